"""A typed driver for real GnuPG (2.2.x), used by the tests as the judge of interoperability.

Every `Gpg` owns one private GNUPGHOME (mode 0700, short path under /tmp because the agent's
socket path is limited to ~107 bytes). All calls run with ``--batch --no-tty --pinentry-mode
loopback`` (except `revoke_key`, which must drive gpg's prompts through ``--command-fd``); the
agent is told ``allow-loopback-pinentry``, caches no passphrase (``max-cache-ttl 0``, so a wrong
passphrase really fails) and protects keys with a small S2K count (``s2k-count 65536``, so
protected exports are quick to unlock; gpg 2.2 otherwise calibrates to ~65 million octets).

Secrets never go on argv: passphrases travel through an inherited pipe (``--passphrase-fd``) and
status lines through an inherited anonymous file (``--status-fd``). `close()` (or the context
manager) runs ``gpgconf --homedir H --kill all`` and removes the home.

gpg's exit code is not a verdict: it returns 0 for SHA-1 signatures, CAST5 messages, expired and
revoked signers. Assert on the parsed status lines (`DecryptResult`) instead.

What gpg 2.2.40 produces (verified by tests/test_gpg_harness.py with ``--list-packets``):

* ``sign_encrypt``: PKESK v3 (tag 1) per recipient subkey, SEIPD v1 (tag 18, mdc_method 2),
  one-pass signatures (tag 4) + literal (tag 11) + signatures (tag 2), v4 signatures carrying
  hashed issuer-fingerprint (33) and creation time (2). gpg writes old-format CTBs for most
  packets (e.g. 0x85 for PKESK, 0xa3 with *indeterminate* length for the compressed packet) and a
  new-format CTB for the SEIPD. Compression is only present when asked (``compress=``).
* ``mdc=False`` adds ``--rfc2440`` and yields SED (tag 9, no MDC). ``--disable-mdc`` alone is
  silently ignored by 2.2.40 (still SEIPD). gpg itself then refuses to decrypt it
  ("decryption forced to fail", DECRYPTION_FAILED, exit 2) **after** it has already written
  the plaintext to stdout; ``ignore_mdc_error=True`` makes it accept.
* SHA-1 (``digest="SHA1"``), CAST5 and 3DES (``cipher=``) are produced without extra flags; gpg
  only warns that the cipher "violates recipient preferences". Decrypting them exits 0.
* ``throw_keyids=True`` writes all-zero key IDs in the PKESKs (status ``ENC_TO 0000000000000000``).
* ``textmode=True`` makes signatures of class 0x01 and a literal packet of format 't' (0x74).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

__all__ = [
    "CIPHER_NAMES",
    "DAVE_PASSPHRASE",
    "HASH_NAMES",
    "DecryptResult",
    "Gpg",
    "GpgError",
    "GpgRun",
    "GpgWorld",
    "KeyInfo",
    "KeyListing",
    "SigResult",
    "StatusLine",
    "WorldKey",
    "build_world",
    "gpg_available",
    "packet_tags",
]

GPG_BIN = shutil.which("gpg") or "/usr/bin/gpg"
GPGCONF_BIN = shutil.which("gpgconf") or "/usr/bin/gpgconf"

#: OpenPGP hash algorithm ids (RFC 9580 §9.5) as gpg reports them in VALIDSIG / ERRSIG.
HASH_NAMES: dict[int, str] = {
    1: "MD5",
    2: "SHA1",
    3: "RIPEMD160",
    8: "SHA256",
    9: "SHA384",
    10: "SHA512",
    11: "SHA224",
}
#: OpenPGP symmetric algorithm ids (RFC 9580 §9.3) as in DECRYPTION_INFO.
CIPHER_NAMES: dict[int, str] = {
    0: "PLAINTEXT",
    1: "IDEA",
    2: "3DES",
    3: "CAST5",
    4: "BLOWFISH",
    7: "AES128",
    8: "AES192",
    9: "AES256",
    10: "TWOFISH",
    11: "CAMELLIA128",
    12: "CAMELLIA192",
    13: "CAMELLIA256",
}

Compress = Literal["none", "zip", "zlib", "bzip2"]
# Longest socket name gpg-agent creates in the home ("S.gpg-agent.browser"), plus a margin.
_MAX_HOME_LEN = 107 - len("/S.gpg-agent.browser") - 4
_ERRSIG_REASONS = {4: "unsupported algorithm", 9: "missing public key"}


def gpg_available() -> bool:
    """True when a gpg and gpgconf binary exist (tests mark themselves skipped otherwise)."""
    return os.access(GPG_BIN, os.X_OK) and os.access(GPGCONF_BIN, os.X_OK)


class GpgError(Exception):
    """gpg exited non-zero (or produced no expected status). Carries the exit code and stderr."""

    def __init__(
        self,
        returncode: int,
        stderr: str,
        *,
        command: str = "",
        status: Sequence[StatusLine] = (),
    ) -> None:
        self.returncode = returncode
        self.stderr = stderr
        self.command = command
        self.status = tuple(status)
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"gpg {command} exited {returncode}:\n{tail}")


@dataclass(frozen=True)
class StatusLine:
    """One ``[GNUPG:] KEYWORD args...`` line."""

    keyword: str
    args: tuple[str, ...]

    @classmethod
    def parse_all(cls, raw: bytes) -> tuple[StatusLine, ...]:
        out: list[StatusLine] = []
        for line in raw.decode("utf-8", "replace").splitlines():
            if not line.startswith("[GNUPG:] "):
                continue
            parts = line[len("[GNUPG:] ") :].split(" ")
            out.append(cls(parts[0], tuple(parts[1:])))
        return tuple(out)


@dataclass(frozen=True)
class GpgRun:
    """Raw outcome of `Gpg.run`: exit code, stdout bytes, stderr text, status lines."""

    returncode: int
    stdout: bytes
    stderr: str
    status: tuple[StatusLine, ...]

    def first(self, keyword: str) -> StatusLine | None:
        return next((s for s in self.status if s.keyword == keyword), None)

    def all(self, keyword: str) -> list[StatusLine]:
        return [s for s in self.status if s.keyword == keyword]


# --------------------------------------------------------------------------------------------
# key listings


@dataclass(frozen=True)
class KeyInfo:
    """A primary key or subkey from ``--with-colons`` (``pub``/``sub`` + ``fpr`` records)."""

    fingerprint: str
    keyid: str
    length: int
    algo: int  # 1 = RSA
    capabilities: str  # this key's own usage, lower case in gpg's order, e.g. "sc", "e", "s"
    created: int
    expires: int | None
    validity: str  # gpg's field 2: u ultimate, f full, e expired, r revoked, - unknown, ...

    @property
    def expired(self) -> bool:
        return self.validity == "e"

    @property
    def revoked(self) -> bool:
        return self.validity == "r"


@dataclass(frozen=True)
class KeyListing:
    """Parsed ``gpg -k --with-colons --with-fingerprint --fixed-list-mode FPR``."""

    primary: KeyInfo
    subkeys: tuple[KeyInfo, ...]
    uids: tuple[str, ...]
    #: The whole key's usage (the upper-case letters of the ``pub`` record), e.g. "SCE"; gpg
    #: leaves out capabilities whose only carrier is expired or revoked.
    key_capabilities: str

    def subkeys_with(self, capability: str) -> list[KeyInfo]:
        """Subkeys whose own usage includes `capability` ("e", "s", "a")."""
        return [k for k in self.subkeys if capability in k.capabilities]

    @property
    def encryption_subkey(self) -> KeyInfo:
        """The single encryption-capable subkey (fails loudly if there isn't exactly one)."""
        (key,) = self.subkeys_with("e")
        return key


def _parse_key_record(fields: list[str], fpr: str) -> KeyInfo:
    caps = "".join(c for c in fields[11] if c.islower())
    return KeyInfo(
        fingerprint=fpr,
        keyid=fields[4],
        length=int(fields[2]),
        algo=int(fields[3]),
        capabilities=caps,
        created=int(fields[5]),
        expires=int(fields[6]) if fields[6] else None,
        validity=fields[1],
    )


def _parse_listing(text: str) -> list[KeyListing]:
    listings: list[KeyListing] = []
    pending: list[str] | None = None
    kind = ""
    primary: KeyInfo | None = None
    key_caps = ""
    subs: list[KeyInfo] = []
    uids: list[str] = []

    def flush() -> None:
        if primary is not None:
            listings.append(KeyListing(primary, tuple(subs), tuple(uids), key_caps))

    for line in text.splitlines():
        fields = line.split(":")
        rec = fields[0]
        if rec in ("pub", "sec"):
            flush()
            primary, subs, uids = None, [], []
            key_caps = "".join(c for c in fields[11] if c.isupper())
            pending, kind = fields, "pub"
        elif rec in ("sub", "ssb"):
            pending, kind = fields, "sub"
        elif rec == "fpr" and pending is not None:
            info = _parse_key_record(pending, fields[9])
            if kind == "pub":
                primary = info
            else:
                subs.append(info)
            pending = None
        elif rec == "uid":
            uids.append(fields[9])
    flush()
    return listings


# --------------------------------------------------------------------------------------------
# decryption / verification results


@dataclass(frozen=True)
class SigResult:
    """One signature as reported between NEWSIG markers.

    `status` is the verdict keyword: GOODSIG, EXPSIG (signature expired), EXPKEYSIG (key
    expired), REVKEYSIG (key revoked), BADSIG, or ERRSIG (could not check: see `errsig_rc`).
    The VALIDSIG fields are filled whenever the signature is cryptographically correct, which gpg
    also reports for EXPKEYSIG / REVKEYSIG.
    """

    status: str
    keyid: str
    signing_fpr: str | None = None  # the key (possibly a subkey) that made the signature
    primary_fpr: str | None = None  # its primary key
    created: int | None = None
    expires: int | None = None
    pk_algo: int | None = None
    hash_algo: int | None = None
    sig_class: int | None = None
    errsig_rc: int | None = None

    @property
    def hash_name(self) -> str | None:
        return None if self.hash_algo is None else HASH_NAMES.get(self.hash_algo, "?")

    @property
    def errsig_reason(self) -> str | None:
        if self.errsig_rc is None:
            return None
        return _ERRSIG_REASONS.get(self.errsig_rc, f"rc={self.errsig_rc}")


_VERDICTS = ("GOODSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "BADSIG", "ERRSIG")


def _parse_signatures(status: Sequence[StatusLine]) -> tuple[SigResult, ...]:
    groups: list[list[StatusLine]] = []
    for s in status:
        if s.keyword == "NEWSIG":
            groups.append([])
        elif s.keyword in (*_VERDICTS, "VALIDSIG"):
            if not groups:  # very old gpg without NEWSIG
                groups.append([])
            groups[-1].append(s)
    out: list[SigResult] = []
    for group in groups:
        verdict = next((s for s in group if s.keyword in _VERDICTS), None)
        if verdict is None:
            continue
        kw: dict[str, object] = {"status": verdict.keyword, "keyid": verdict.args[0]}
        if verdict.keyword == "ERRSIG":
            # ERRSIG keyid pkalgo hashalgo class time rc [fpr]
            a = verdict.args
            kw |= {
                "pk_algo": int(a[1]),
                "hash_algo": int(a[2]),
                "sig_class": int(a[3], 16),
                "created": int(a[4]),
                "errsig_rc": int(a[5]),
            }
        valid = next((s for s in group if s.keyword == "VALIDSIG"), None)
        if valid is not None:
            # VALIDSIG fpr date timestamp expire version reserved pkalgo hashalgo class [primary]
            a = valid.args
            kw |= {
                "signing_fpr": a[0],
                "created": int(a[2]),
                "expires": int(a[3]) or None,
                "pk_algo": int(a[6]),
                "hash_algo": int(a[7]),
                "sig_class": int(a[8], 16),
                "primary_fpr": a[9] if len(a) > 9 else a[0],
            }
        out.append(SigResult(**kw))  # type: ignore[arg-type]
    return tuple(out)


@dataclass(frozen=True)
class DecryptResult:
    """What ``gpg --decrypt`` said, parsed from ``--status-fd``.

    `plaintext` is whatever gpg wrote to stdout — **even when decryption then failed** (gpg 2.2
    writes an SED's plaintext before it reports DECRYPTION_FAILED). Judge by `ok`/the flags.
    """

    plaintext: bytes
    returncode: int
    status: tuple[StatusLine, ...]
    stderr: str
    signatures: tuple[SigResult, ...] = field(default=())

    # --- plumbing ---------------------------------------------------------------------------
    def has(self, keyword: str) -> bool:
        return any(s.keyword == keyword for s in self.status)

    def args_of(self, keyword: str) -> list[tuple[str, ...]]:
        return [s.args for s in self.status if s.keyword == keyword]

    # --- decryption -------------------------------------------------------------------------
    @property
    def begin_decryption(self) -> bool:
        return self.has("BEGIN_DECRYPTION")

    @property
    def decryption_okay(self) -> bool:
        return self.has("DECRYPTION_OKAY")

    @property
    def decryption_failed(self) -> bool:
        return self.has("DECRYPTION_FAILED")

    @property
    def goodmdc(self) -> bool:
        return self.has("GOODMDC")

    @property
    def encrypted(self) -> bool:
        return self.begin_decryption or self.has("ENC_TO")

    @property
    def enc_to(self) -> tuple[str, ...]:
        """Key IDs from the PKESKs, in message order ("0000000000000000" for wildcards)."""
        return tuple(a[0] for a in self.args_of("ENC_TO"))

    @property
    def no_seckey(self) -> tuple[str, ...]:
        return tuple(a[0] for a in self.args_of("NO_SECKEY"))

    @property
    def decryption_key(self) -> tuple[str, str] | None:
        """(subkey fingerprint, primary fingerprint) of the key gpg decrypted with."""
        a = self.args_of("DECRYPTION_KEY")
        return (a[0][0], a[0][1]) if a else None

    def _decryption_info(self) -> tuple[str, ...] | None:
        a = self.args_of("DECRYPTION_INFO")
        return a[0] if a else None

    @property
    def mdc_method(self) -> int | None:
        """2 for SEIPD v1 with SHA-1 MDC, 0 for SED (no integrity protection)."""
        info = self._decryption_info()
        return int(info[0]) if info else None

    @property
    def cipher_algo(self) -> int | None:
        info = self._decryption_info()
        return int(info[1]) if info else None

    @property
    def aead_algo(self) -> int | None:
        info = self._decryption_info()
        return int(info[2]) if info and len(info) > 2 else None

    @property
    def cipher_name(self) -> str | None:
        algo = self.cipher_algo
        return None if algo is None else CIPHER_NAMES.get(algo, f"?{algo}")

    @property
    def nodata(self) -> tuple[int, ...]:
        return tuple(int(a[0]) for a in self.args_of("NODATA"))

    @property
    def plaintext_format(self) -> str | None:
        """Literal-data format as a character: 'b', 't', 'u', 'm' (from PLAINTEXT)."""
        a = self.args_of("PLAINTEXT")
        return chr(int(a[0][0], 16)) if a else None

    @property
    def plaintext_filename(self) -> str | None:
        a = self.args_of("PLAINTEXT")
        return a[0][2] if a and len(a[0]) > 2 else None

    @property
    def failures(self) -> tuple[str, ...]:
        """FAILURE / ERROR lines, e.g. ("decrypt 33587281",)."""
        return tuple(" ".join(a) for a in self.args_of("FAILURE") + self.args_of("ERROR"))

    # --- signatures -------------------------------------------------------------------------
    @property
    def good_signatures(self) -> tuple[SigResult, ...]:
        return tuple(s for s in self.signatures if s.status == "GOODSIG")

    @property
    def goodsig_fprs(self) -> frozenset[str]:
        """Primary AND signing-key fingerprints of the GOODSIG signatures."""
        out: set[str] = set()
        for s in self.good_signatures:
            out |= {f for f in (s.signing_fpr, s.primary_fpr) if f}
        return frozenset(out)

    def _with(self, status: str) -> tuple[SigResult, ...]:
        return tuple(s for s in self.signatures if s.status == status)

    @property
    def badsig(self) -> tuple[SigResult, ...]:
        return self._with("BADSIG")

    @property
    def errsig(self) -> tuple[SigResult, ...]:
        return self._with("ERRSIG")

    @property
    def expkeysig(self) -> tuple[SigResult, ...]:
        return self._with("EXPKEYSIG")

    @property
    def expsig(self) -> tuple[SigResult, ...]:
        return self._with("EXPSIG")

    @property
    def revkeysig(self) -> tuple[SigResult, ...]:
        return self._with("REVKEYSIG")

    @property
    def hash_algos(self) -> frozenset[int]:
        return frozenset(s.hash_algo for s in self.signatures if s.hash_algo is not None)

    @property
    def hash_names(self) -> frozenset[str]:
        """Digest names of all signatures seen (any verdict), e.g. {"SHA384"}."""
        return frozenset(HASH_NAMES.get(a, f"?{a}") for a in self.hash_algos)

    @property
    def ok(self) -> bool:
        """Decryption verdict only (says nothing about signatures): gpg exited 0 and either the
        message was not encrypted, or it was SEIPD (mdc_method 2) and GOODMDC was reported."""
        if self.returncode != 0 or self.decryption_failed:
            return False
        if self.encrypted:
            return self.decryption_okay and self.goodmdc and self.mdc_method == 2
        return True


# --------------------------------------------------------------------------------------------
# the driver


_PACKET_RE = re.compile(r"^# off=(\d+) ctb=([0-9a-f]{2}) tag=(\d+) ", re.MULTILINE)


def packet_tags(listing: str) -> list[int]:
    """Packet tags, in order, from a ``--list-packets --verbose`` dump (``# off= ctb= tag=``)."""
    return [int(m.group(3)) for m in _PACKET_RE.finditer(listing)]


class Gpg:
    """One isolated GnuPG home, owned by this object (`close()` deletes it).

    Use `Gpg.create()` and `close()` it, or use it as a context manager.
    """

    def __init__(self, home: Path, *, s2k_count: int = 65536) -> None:
        home = Path(home)
        if len(str(home)) > _MAX_HOME_LEN:
            raise ValueError(f"GNUPGHOME path too long for gpg-agent sockets: {home}")
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)
        self.home = home
        (home / "gpg-agent.conf").write_text(
            "allow-loopback-pinentry\n"
            f"s2k-count {s2k_count}\n"
            "default-cache-ttl 0\n"
            "max-cache-ttl 0\n"
        )
        (home / "gpg.conf").write_text("no-auto-key-retrieve\nauto-key-locate local\n")
        self._closed = False

    @classmethod
    def create(cls, parent: str | Path | None = None, *, s2k_count: int = 65536) -> Gpg:
        """A new home in `parent` (default: /tmp, short enough for the agent's sockets)."""
        base = str(parent) if parent is not None else "/tmp"
        return cls(Path(tempfile.mkdtemp(prefix="g", dir=base)), s2k_count=s2k_count)

    def close(self) -> None:
        """Kill this home's gpg-agent (and dirmngr), then delete the home."""
        if self._closed:
            return
        self._closed = True
        subprocess.run(
            [GPGCONF_BIN, "--homedir", str(self.home), "--kill", "all"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gpg(home={str(self.home)!r})"

    # --- process plumbing ---------------------------------------------------------------------
    def run(
        self,
        args: Sequence[str],
        *,
        stdin: bytes = b"",
        passphrase: str | None = None,
        at: int | None = None,
        check: bool = True,
        batch: bool = True,
        commands: bytes | None = None,
    ) -> GpgRun:
        """Run gpg with this home. `passphrase` goes through a pipe fd, `commands` through
        ``--command-fd`` (another pipe); status lines are collected via ``--status-fd``."""
        argv = [GPG_BIN, "--homedir", str(self.home), "--no-tty", "--pinentry-mode", "loopback"]
        if batch:
            argv.append("--batch")
        fds: list[int] = []
        with tempfile.TemporaryFile(dir=self.home) as status_file:
            try:
                status_fd = status_file.fileno()
                fds.append(status_fd)
                argv += ["--status-fd", str(status_fd)]
                if passphrase is not None:
                    fd = _pipe_with(passphrase.encode() + b"\n")
                    fds.append(fd)
                    argv += ["--passphrase-fd", str(fd)]
                if commands is not None:
                    fd = _pipe_with(commands)
                    fds.append(fd)
                    argv += ["--command-fd", str(fd)]
                if at is not None:
                    argv += ["--faked-system-time", f"{int(at)}!"]
                argv += list(args)
                proc = subprocess.run(
                    argv,
                    input=stdin,
                    capture_output=True,
                    pass_fds=fds,
                    check=False,
                    env=_env(self.home),
                )
            finally:
                for fd in fds[1:]:
                    os.close(fd)
            status_file.seek(0)
            status = StatusLine.parse_all(status_file.read())
        result = GpgRun(
            proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"), status
        )
        if check and proc.returncode != 0:
            raise GpgError(proc.returncode, result.stderr, command=_describe(args), status=status)
        return result

    # --- keys ---------------------------------------------------------------------------------
    def gen_key(
        self,
        uid: str,
        *,
        algo: str = "rsa3072",
        expire: str = "1y",
        passphrase: str | None = None,
        subkey: bool = True,
        signing_subkey: bool = False,
        subkey_expire: str | None = None,
        at: int | None = None,
    ) -> str:
        """Generate a key; returns the primary fingerprint.

        Default: primary "cert,sign" + one "encr" subkey. `signing_subkey=True`: primary
        "cert" only, plus a "sign" subkey (binding signature with embedded 0x19 back-signature)
        and, if `subkey`, an "encr" subkey. `passphrase=None` makes an unprotected key (S2K usage
        0). `expire` takes gpg's forms: "1y", "2w", "1d", "seconds=N" (from now/`at`), "never",
        or an ISO date; `subkey_expire` defaults to `expire`. `at` fakes the creation time.
        """
        usage = "cert" if signing_subkey else "cert,sign"
        res = self.run(
            ["--quick-gen-key", uid, algo, usage, expire],
            passphrase=passphrase or "",
            at=at,
        )
        created = res.first("KEY_CREATED")
        if created is None:
            raise GpgError(res.returncode, res.stderr, command="--quick-gen-key (no KEY_CREATED)")
        fpr = created.args[1]
        sub_expire = subkey_expire or expire
        if signing_subkey:
            self.add_subkey(
                fpr, usage="sign", algo=algo, expire=sub_expire, passphrase=passphrase, at=at
            )
        if subkey:
            self.add_subkey(
                fpr, usage="encr", algo=algo, expire=sub_expire, passphrase=passphrase, at=at
            )
        return fpr

    def add_subkey(
        self,
        fpr: str,
        *,
        usage: Literal["encr", "sign", "auth"] = "encr",
        algo: str = "rsa3072",
        expire: str = "1y",
        passphrase: str | None = None,
        at: int | None = None,
    ) -> str:
        """``--quick-add-key``; returns the new subkey's fingerprint."""
        res = self.run(
            ["--quick-add-key", fpr, algo, usage, expire], passphrase=passphrase or "", at=at
        )
        created = res.first("KEY_CREATED")
        if created is None:
            raise GpgError(res.returncode, res.stderr, command="--quick-add-key (no KEY_CREATED)")
        return created.args[1]

    def import_key(self, data: bytes, *, passphrase: str | None = None) -> list[str]:
        """Import armored or binary keys (public or secret, or a revocation certificate).

        Returns the fingerprints from IMPORT_OK, deduplicated, in order.
        """
        res = self.run(["--import"], stdin=data, passphrase=passphrase)
        fprs: list[str] = []
        for s in res.all("IMPORT_OK"):
            if len(s.args) > 1 and s.args[1] not in fprs:
                fprs.append(s.args[1])
        if not fprs and not res.all("IMPORT_RES"):
            raise GpgError(res.returncode, res.stderr, command="--import (nothing imported)")
        return fprs

    def export_public(self, fpr: str, *, armor: bool = True) -> bytes:
        res = self.run([*(["--armor"] if armor else []), "--export", fpr])
        if not res.stdout:
            raise GpgError(res.returncode, res.stderr, command=f"--export {fpr} (empty)")
        return res.stdout

    def export_secret(
        self, fpr: str, *, passphrase: str | None = None, armor: bool = True
    ) -> bytes:
        """Export the transferable secret key.

        gpg 2.2 exports a key that was made with a passphrase protected again with that
        passphrase (S2K usage 254, iterated+salted SHA-1, AES-128 CFB, count = agent's
        s2k-count), and an unprotected key unprotected (S2K usage 0 + 2-octet checksum).
        """
        res = self.run(
            [*(["--armor"] if armor else []), "--export-secret-keys", fpr],
            passphrase=passphrase or "",
        )
        if not res.stdout:
            raise GpgError(res.returncode, res.stderr, command=f"--export-secret-keys {fpr}")
        return res.stdout

    def list_keys(self, fpr: str, *, secret: bool = False) -> KeyListing:
        """The one key matching `fpr` (``-k``, or ``-K`` when `secret`)."""
        found = self.list_all_keys(fpr, secret=secret)
        if len(found) != 1:
            raise LookupError(f"{len(found)} keys match {fpr!r}")
        return found[0]

    def list_all_keys(self, *patterns: str, secret: bool = False) -> list[KeyListing]:
        """All keys (matching `patterns`); unknown patterns just match nothing."""
        res = self.run(
            [
                "--with-colons",
                "--with-fingerprint",
                "--with-subkey-fingerprint",
                "--fixed-list-mode",
                "--list-secret-keys" if secret else "--list-keys",
                *patterns,
            ],
            check=False,
        )
        listings = _parse_listing(res.stdout.decode("utf-8", "replace"))
        if res.returncode != 0 and not listings and "No " not in res.stderr:
            raise GpgError(res.returncode, res.stderr, command="--list-keys", status=res.status)
        return listings

    def trust(self, fpr: str) -> None:
        """Set ultimate ownertrust (``--import-ownertrust``)."""
        self.run(["--import-ownertrust"], stdin=f"{fpr}:6:\n".encode())

    def set_expire(
        self,
        fpr: str,
        expire: str,
        *,
        subkeys: Sequence[str] | Literal["*"] | None = None,
        passphrase: str | None = None,
        at: int | None = None,
    ) -> None:
        """``--quick-set-expire``: the primary's expiry, or (with `subkeys`) those subkeys'.

        `expire` is relative to now/`at` ("1d", "seconds=N"), an ISO date, or "never"/"0".
        The new self-signature must be newer than the previous one: with a faked clock, reusing
        the same `at` makes gpg wait ~5 s and then fail with "Time conflict"; step `at` forward.
        """
        extra = [] if subkeys is None else (["*"] if subkeys == "*" else list(subkeys))
        self.run(["--quick-set-expire", fpr, expire, *extra], passphrase=passphrase or "", at=at)

    def revoke_key(
        self,
        fpr: str,
        *,
        reason: Literal[0, 1, 2, 3] = 0,
        description: str = "",
        passphrase: str | None = None,
        at: int | None = None,
        import_it: bool = True,
    ) -> bytes:
        """Make a key revocation certificate (sig class 0x20) and import it; returns it armored.

        gpg 2.2.40 refuses ``--gen-revoke`` under ``--batch`` ("can't do this in batch mode"),
        so this answers its prompts via ``--command-fd`` without ``--batch``. `reason` is the
        OpenPGP code: 0 none, 1 superseded, 2 compromised, 3 retired. `at` sets the revocation's
        creation time (gpg treats a revoked key as revoked for all its signatures, whatever
        their time)."""
        menu = {0: 0, 1: 2, 2: 1, 3: 3}[reason]  # gpg's menu order differs from the codes
        lines = ["y", str(menu), *description.splitlines(), "", "y", ""]
        res = self.run(
            ["--armor", "--gen-revoke", fpr],
            passphrase=passphrase or "",
            at=at,
            batch=False,
            commands="\n".join(lines).encode(),
        )
        if not res.stdout:
            raise GpgError(res.returncode, res.stderr, command="--gen-revoke (empty)")
        if import_it:
            self.import_key(res.stdout)
        return res.stdout

    # --- messages -----------------------------------------------------------------------------
    def sign_encrypt(
        self,
        data: bytes,
        *,
        recipients: Sequence[str],
        signers: Sequence[str],
        digest: str = "SHA384",
        cipher: str = "AES256",
        compress: Compress = "none",
        armor: bool = False,
        textmode: bool = False,
        throw_keyids: bool = False,
        mdc: bool = True,
        passphrase: str | None = None,
        at: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> bytes:
        """Signed-then-encrypted message (``--sign --encrypt``), the GOPC shape.

        Several `signers` produce several one-pass/signature pairs — gpg writes the one-pass
        packets in *reverse* `signers` order (only the last has nested flag 1) and the signatures
        mirrored after the literal; several `recipients` give one PKESK each (to each key's
        encryption subkey). One `passphrase` serves all signers.
        `mdc=False` adds ``--rfc2440`` → SED (tag 9). Recipients are used with
        ``--always-trust``.
        """
        if not recipients or not signers:
            raise ValueError("sign_encrypt needs recipients and signers")
        return self._make(
            data, "se", recipients=recipients, signers=signers, digest=digest, cipher=cipher,
            compress=compress, armor=armor, textmode=textmode, throw_keyids=throw_keyids,
            mdc=mdc, passphrase=passphrase, at=at, extra_args=extra_args,
        )  # fmt: skip

    def encrypt_only(
        self,
        data: bytes,
        *,
        recipients: Sequence[str],
        cipher: str = "AES256",
        compress: Compress = "none",
        armor: bool = False,
        throw_keyids: bool = False,
        mdc: bool = True,
        at: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> bytes:
        """Encrypted, unsigned (``--encrypt``)."""
        if not recipients:
            raise ValueError("encrypt_only needs recipients")
        return self._make(
            data, "e", recipients=recipients, signers=(), cipher=cipher, compress=compress,
            armor=armor, throw_keyids=throw_keyids, mdc=mdc, at=at, extra_args=extra_args,
        )  # fmt: skip

    def sign_only(
        self,
        data: bytes,
        *,
        signers: Sequence[str],
        digest: str = "SHA384",
        compress: Compress = "none",
        armor: bool = False,
        textmode: bool = False,
        detached: bool = False,
        passphrase: str | None = None,
        at: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> bytes:
        """Signed, not encrypted (``--sign``; ``--detach-sign`` when `detached`)."""
        if not signers:
            raise ValueError("sign_only needs signers")
        return self._make(
            data, "d" if detached else "s", recipients=(), signers=signers, digest=digest,
            compress=compress, armor=armor, textmode=textmode, passphrase=passphrase, at=at,
            extra_args=extra_args,
        )  # fmt: skip

    def _make(
        self,
        data: bytes,
        mode: Literal["se", "e", "s", "d"],
        *,
        recipients: Sequence[str],
        signers: Sequence[str],
        digest: str = "SHA384",
        cipher: str = "AES256",
        compress: Compress = "none",
        armor: bool = False,
        textmode: bool = False,
        throw_keyids: bool = False,
        mdc: bool = True,
        passphrase: str | None = None,
        at: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> bytes:
        args: list[str] = ["--output", "-"]
        if armor:
            args.append("--armor")
        if textmode:
            args.append("--textmode")
        if compress == "none":
            args += ["--compress-algo", "none", "-z", "0"]
        else:
            args += ["--compress-algo", compress, "-z", "6"]
        if "e" in mode:
            args += ["--always-trust", "--cipher-algo", cipher]
            if throw_keyids:
                args.append("--throw-keyids")
            if not mdc:
                args.append("--rfc2440")
            for r in recipients:
                args += ["--recipient", r]
        if mode != "e":
            args += ["--digest-algo", digest]
            for s in signers:
                args += ["--local-user", s]
        args += list(extra_args)
        args += {"se": ["--sign", "--encrypt"], "e": ["--encrypt"], "s": ["--sign"]}.get(
            mode, ["--detach-sign"]
        )
        res = self.run(args, stdin=data, passphrase=passphrase, at=at)
        if not res.stdout:
            raise GpgError(res.returncode, res.stderr, command=_describe(args) + " (no output)")
        return res.stdout

    def decrypt_verify(
        self,
        message: bytes,
        *,
        passphrase: str | None = None,
        at: int | None = None,
        ignore_mdc_error: bool = False,
        check: bool = True,
        extra_args: Sequence[str] = (),
    ) -> DecryptResult:
        """``gpg --decrypt`` (also verifies signed-only messages). Raises `GpgError` on a
        non-zero exit unless `check=False` — and exit 0 is NOT a verdict: inspect the result."""
        args = ["--output", "-", *(["--ignore-mdc-error"] if ignore_mdc_error else [])]
        res = self.run(
            [*args, *extra_args, "--decrypt"],
            stdin=message,
            passphrase=passphrase,
            at=at,
            check=check,
        )
        return DecryptResult(
            plaintext=res.stdout,
            returncode=res.returncode,
            status=res.status,
            stderr=res.stderr,
            signatures=_parse_signatures(res.status),
        )

    def verify_detached(
        self, signature: bytes, data: bytes, *, at: int | None = None, check: bool = True
    ) -> DecryptResult:
        """``gpg --verify SIG DATA`` (the two are written to files in the home)."""
        with tempfile.TemporaryDirectory(dir=self.home) as tmp:
            sig_path, data_path = Path(tmp, "sig"), Path(tmp, "data")
            sig_path.write_bytes(signature)
            data_path.write_bytes(data)
            res = self.run(["--verify", str(sig_path), str(data_path)], at=at, check=check)
        return DecryptResult(
            plaintext=b"",
            returncode=res.returncode,
            status=res.status,
            stderr=res.stderr,
            signatures=_parse_signatures(res.status),
        )

    def list_packets(
        self, message: bytes, *, passphrase: str | None = None, verbose: bool = True
    ) -> str:
        """``--list-packets`` dump (never raises: gpg exits 2 e.g. for SED or no secret key).

        With the secret key in this home gpg decrypts and lists the inner packets too; without
        it only the outer PKESK/SEIPD packets appear. `verbose` adds ``# off= ctb= tag=`` lines
        (see `packet_tags`).
        """
        res = self.run(
            [*(["--verbose"] if verbose else []), "--list-packets"],
            stdin=message,
            passphrase=passphrase,
            check=False,
        )
        return res.stdout.decode("utf-8", "replace")


def _pipe_with(data: bytes) -> int:
    """A pipe's read end that yields `data` then EOF (data must fit the pipe buffer)."""
    if len(data) > 60000:
        raise ValueError("too much data for an fd pipe")
    r, w = os.pipe()
    try:
        os.write(w, data)
    finally:
        os.close(w)
    return r


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPG_", "GNUPG"))}
    env["GNUPGHOME"] = str(home)
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    return env


def _describe(args: Iterable[str]) -> str:
    """argv without values that could be sensitive (there are none on argv, but stay short)."""
    return " ".join(a for a in args if a.startswith("--"))[:200]


# --------------------------------------------------------------------------------------------
# a session's worth of gpg-made keys and messages (built by conftest.py's gpg_world)

DAVE_PASSPHRASE = "correct horse"
_DAY = 86400


@dataclass(frozen=True)
class WorldKey:
    """A gpg-made RSA-2048 key. Fingerprints are upper-case hex, as gpg prints them."""

    name: str
    uid: str
    fpr: str  # primary key
    public: bytes  # armored transferable public key
    secret: bytes  # armored transferable secret key (protected iff passphrase)
    passphrase: str | None
    encryption_fpr: str | None  # the "e" subkey
    signing_fpr: str  # the key that makes data signatures (primary, or the "s" subkey)


@dataclass
class GpgWorld:
    """Keys made once per session, all created at `base` (= session start - 2 days).

    * alice, carol: unprotected; primary "sc" + "e" subkey; expire base + 1y.
    * dave: like alice but protected with DAVE_PASSPHRASE (secret export has S2K usage 254).
    * sam: primary "c" only + "s" signing subkey (binding sig with embedded 0x19) + "e" subkey.
    * erin: primary "sc" valid, but her "e" subkey expired at base + 1d (now - 1d).
    * ed: the whole key expired at base + 1d (primary "sc" + "e" subkey).
    * rex: primary "sc" + "e" subkey, revoked (reason 0) at base + 2h.

    Premade messages (binary, SHA-384, AES-256, SEIPD, uncompressed, plaintext `GOPC`):
    * msg_from_ed_to_alice: signed by ed at base + 1h (valid then) -> EXPKEYSIG now.
    * msg_from_rex_to_alice: signed by rex at base + 1h, before its revocation -> REVKEYSIG.
    * msg_to_erin: signed by alice, encrypted to erin's subkey at base + 1h (before it expired).
    """

    home: Gpg
    base: int
    keys: dict[str, WorldKey] = field(default_factory=dict)
    messages: dict[str, bytes] = field(default_factory=dict)

    GOPC: ClassVar[bytes] = (
        b'{"protocolHeader":{"version":1},"paymentCard":{"accountNumber":"4111111111111111"}}'
    )

    def __getitem__(self, name: str) -> WorldKey:
        return self.keys[name]

    def import_public(self, into: Gpg, *names: str) -> None:
        """Import the named keys' public parts (all keys when none named)."""
        for name in names or tuple(self.keys):
            into.import_key(self.keys[name].public)

    def import_secret(self, into: Gpg, *names: str) -> None:
        """Import the named keys' secret parts and give them ultimate ownertrust."""
        for name in names:
            key = self.keys[name]
            into.import_key(key.secret, passphrase=key.passphrase)
            into.trust(key.fpr)


def build_world(home: Gpg) -> GpgWorld:
    """Generate the GpgWorld keys and messages in `home` (about 1.5 s with RSA-2048)."""
    base = int(time.time()) - 2 * _DAY
    world = GpgWorld(home=home, base=base)
    specs: dict[str, tuple[str, dict[str, Any]]] = {
        "alice": ("Alice <alice@example.com>", {}),
        "carol": ("Carol <carol@example.com>", {}),
        "dave": ("Dave <dave@example.com>", {"passphrase": DAVE_PASSPHRASE}),
        "sam": ("Sam <sam@example.com>", {"signing_subkey": True}),
        "erin": ("Erin <erin@example.com>", {"subkey_expire": "1d"}),
        "ed": ("Ed <ed@example.com>", {"expire": "1d"}),
        "rex": ("Rex <rex@example.com>", {}),
    }
    fprs = {
        name: home.gen_key(uid, algo="rsa2048", at=base, **kw) for name, (uid, kw) in specs.items()
    }
    hour = base + 3600
    alice = fprs["alice"]
    world.messages["msg_from_ed_to_alice"] = home.sign_encrypt(
        world.GOPC, recipients=[alice], signers=[fprs["ed"]], at=hour
    )
    world.messages["msg_from_rex_to_alice"] = home.sign_encrypt(
        world.GOPC, recipients=[alice], signers=[fprs["rex"]], at=hour
    )
    world.messages["msg_to_erin"] = home.sign_encrypt(
        world.GOPC, recipients=[fprs["erin"]], signers=[alice], at=hour
    )
    home.revoke_key(fprs["rex"], at=base + 7200)

    for name, fpr in fprs.items():
        listing = home.list_keys(fpr)
        enc = [k.fingerprint for k in listing.subkeys if "e" in k.capabilities]
        sig = [k.fingerprint for k in listing.subkeys if "s" in k.capabilities]
        passphrase = DAVE_PASSPHRASE if name == "dave" else None
        world.keys[name] = WorldKey(
            name=name,
            uid=listing.uids[0],
            fpr=fpr,
            public=home.export_public(fpr),
            secret=home.export_secret(fpr, passphrase=passphrase),
            passphrase=passphrase,
            encryption_fpr=enc[0] if enc else None,
            signing_fpr=sig[0] if sig else fpr,
        )
    return world
