"""The interop matrix: pushprov against six OpenPGP implementations, both directions.

Peers: sqop (Sequoia), gosop (GopenPGP) and pgpainless-cli (PGPainless) through their SOP
command lines; GnuPG, OpenPGP.js and RNP through their own interfaces. Every peer runs in its
defaults unless a cell says it is told something. ``python -m tests.interop_matrix`` runs every
cell and rewrites the README table between the ``interop-matrix`` markers;
tests/test_interop_matrix.py runs the same cells under pytest.

A cell's result is ``ok``, ``refused by profile`` (the profile forbids what the peer made, and
pushprov said so), ``n/a`` (the peer cannot do it: the detail says why) or ``FAILED``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pushprov import GOOGLE_PROFILE, Card, Encoding, Gopc, Pan, PushprovError, openpgp, seal_gopc
from pushprov import sop as sop_face
from pushprov._clock import now
from pushprov.openpgp import _message
from pushprov.openpgp._packets import read_packets

from .gpg import Gpg, gpg_available

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OPENPGPJS_DIR = Path(__file__).resolve().parent / "interop" / "openpgpjs"
START, END = "<!-- interop-matrix:start -->", "<!-- interop-matrix:end -->"

Status = Literal["ok", "refused by profile", "n/a", "peer limitation", "FAILED"]
PAYLOAD = b'{"interop":"matrix","n":1}'
# A test PAN (Luhn-valid, from a test range): the GOPC cell carries no real card.
_TEST_PAN = "4111111111111111"
_HASHES = {1: "MD5", 2: "SHA1", 8: "SHA256", 9: "SHA384", 10: "SHA512", 11: "SHA224"}
_COMPRESSION = {0: "uncompressed", 1: "ZIP", 2: "ZLIB", 3: "BZip2"}


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str


@dataclasses.dataclass(frozen=True)
class Key:
    """A secret key and its certificate as armored bytes, with who generated it."""

    secret: bytes
    cert: bytes
    email: str
    origin: str  # "peer" or "pushprov"


@dataclasses.dataclass(frozen=True)
class Tell:
    """What a cell tells the peer beyond its defaults (``None``: the peer chooses)."""

    hash: str | None = None  # "SHA384", "SHA1"
    cipher: str | None = None  # "AES256", "CAST5"
    compress: bool = False
    aead: bool = False


class PeerError(Exception):
    """The peer failed or refused: its own words, shortened."""


class PeerUnableError(PeerError):
    """The peer has no way to do what a cell asks: the cell is n/a."""


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run(argv: Sequence[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> bytes:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, check=False, env=env)
    if proc.returncode != 0:
        raise PeerError(f"exit {proc.returncode}: {_short(proc.stderr.decode('utf-8', 'replace'))}")
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# Peers


class Peer:
    name: str
    binary: str
    #: What the peer can be told: "strong" (SHA-384 + AES-256), "sha1", "cast5", "aead", "zlib".
    tellable: frozenset[str] = frozenset()
    #: Whether it generates RSA keys (else our RSA keys are handed to it for signing/decrypting).
    makes_rsa: bool = False

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def available(self) -> bool:
        return shutil.which(self.binary) is not None

    def version(self) -> str:
        raise NotImplementedError

    def generate(self, email: str, *, rsa: bool) -> Key:
        raise NotImplementedError

    def sign_encrypt(
        self, data: bytes, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        raise NotImplementedError

    def decrypt_verify(self, message: bytes, key: Key, verify: bytes) -> tuple[bytes, bool]:
        raise NotImplementedError

    def sign_detached(self, data: bytes, key: Key) -> bytes:
        raise NotImplementedError

    def verify_detached(self, data: bytes, signature: bytes, cert: bytes) -> bool:
        raise NotImplementedError

    def clearsign(self, text: bytes, key: Key) -> bytes:
        """A cleartext-signed message (RFC 9580 §7)."""
        raise NotImplementedError

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        """The text when the cleartext signature verifies, else None."""
        raise NotImplementedError

    def file(self, data: bytes) -> str:
        self._count += 1
        path = self.dir / f"f{self._count}"
        path.write_bytes(data)
        return str(path)


class SopPeer(Peer):
    """A SOP command line. SOP has no option for hash, cipher or compression."""

    verifications_out = "--verifications-out"

    def version(self) -> str:
        return _run([self.binary, "version"]).decode().strip()

    def generate(self, email: str, *, rsa: bool) -> Key:
        if rsa:
            raise PeerError("no way to ask for RSA")
        secret = _run([self.binary, "generate-key", f"{self.name} <{email}>"])
        cert = _run([self.binary, "extract-cert"], secret)
        return Key(secret, cert, email, "peer")

    def sign_encrypt(
        self, data: bytes, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        argv = [self.binary, "encrypt"]
        if not armor:
            argv.append("--no-armor")
        argv += [f"--sign-with={self.file(key.secret)}" for key in signers]
        argv += [self.file(cert) for cert in recipients]
        return _run(argv, data)

    def decrypt_verify(self, message: bytes, key: Key, verify: bytes) -> tuple[bytes, bool]:
        out = self.dir / f"verifications{self._count}"
        self._count += 1
        argv = [
            self.binary, "decrypt", f"--verify-with={self.file(verify)}",
            f"{self.verifications_out}={out}", self.file(key.secret),
        ]  # fmt: skip
        plaintext = _run(argv, message)
        return plaintext, out.exists() and bool(out.read_bytes().strip())

    def sign_detached(self, data: bytes, key: Key) -> bytes:
        return _run([self.binary, "sign", "--no-armor", self.file(key.secret)], data)

    def verify_detached(self, data: bytes, signature: bytes, cert: bytes) -> bool:
        try:
            return bool(_run([self.binary, "verify", self.file(signature), self.file(cert)], data))
        except PeerError:
            return False

    def clearsign(self, text: bytes, key: Key) -> bytes:
        return _run([self.binary, "inline-sign", "--as=clearsigned", self.file(key.secret)], text)

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        try:
            return _run([self.binary, "inline-verify", self.file(cert)], message)
        except PeerError:
            return None


class Sqop(SopPeer):
    name = "sqop"
    binary = "sqop"


class Gosop(SopPeer):
    name = "gosop"
    binary = "gosop"
    verifications_out = "--verify-out"  # the 2022 gosop predates the option's rename
    makes_rsa = True

    def generate(self, email: str, *, rsa: bool) -> Key:
        # gosop makes RSA keys by default: the default key is the RSA key.
        return super().generate(email, rsa=False)

    def version(self) -> str:
        lines = _run([self.binary, "version", "--extended"]).decode().splitlines()
        return " / ".join(line for line in lines[:2] if line)

    def clearsign(self, text: bytes, key: Key) -> bytes:
        raise PeerUnableError("has no inline-sign subcommand (only sign/verify, encrypt/decrypt)")

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        raise PeerUnableError("has no inline-verify subcommand (only sign/verify, encrypt/decrypt)")


class Pgpainless(SopPeer):
    name = "pgpainless-cli"
    binary = "pgpainless-cli"


class GnuPG(Peer):
    name = "GnuPG"
    binary = "gpg"
    tellable = frozenset({"strong", "sha1", "cast5", "zlib"})
    makes_rsa = True

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._gpg: Gpg | None = None
        self._imported: dict[bytes, str] = {}

    def available(self) -> bool:
        return gpg_available()

    @property
    def gpg(self) -> Gpg:
        if self._gpg is None:
            self._gpg = Gpg.create()
        return self._gpg

    def close(self) -> None:
        if self._gpg is not None:
            self._gpg.close()

    def version(self) -> str:
        return _run(["gpg", "--version"]).decode().splitlines()[0]

    def generate(self, email: str, *, rsa: bool) -> Key:
        uid = f"gpg <{email}>"
        if rsa:
            # RSA-2048 [SC] + [E] for speed, one year as our profile wants.
            fpr = self.gpg.gen_key(uid, algo="rsa2048", expire="1y")
        else:
            # gpg's own defaults: no algorithm, usage or expiry named.
            created = self.gpg.run(["--quick-gen-key", uid], passphrase="").first("KEY_CREATED")
            assert created is not None
            fpr = created.args[1]
        secret = self.gpg.run(["--armor", "--export-secret-keys", fpr]).stdout
        cert = self.gpg.export_public(fpr)
        self._imported[cert] = fpr
        self._imported[secret] = fpr
        return Key(secret, cert, email, "peer")

    def _fpr(self, data: bytes) -> str:
        if data not in self._imported:
            self._imported[data] = self.gpg.import_key(data)[0]
        return self._imported[data]

    def sign_encrypt(
        self, data: bytes, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        argv = ["--output", "-", "--always-trust"]
        if armor:
            argv.append("--armor")
        if tell.hash:
            argv += ["--digest-algo", tell.hash]
        if tell.cipher:
            argv += ["--cipher-algo", tell.cipher]
        if tell.compress:
            argv += ["--compress-algo", "zlib"]
        for key in signers:
            argv += ["--local-user", self._fpr(key.secret)]
        for cert in recipients:
            argv += ["--recipient", self._fpr(cert)]
        argv += ["--sign", "--encrypt"] if signers else ["--encrypt"]
        try:
            return self.gpg.run(argv, stdin=data).stdout
        except Exception as error:
            raise PeerError(_short(str(error))) from None

    def decrypt_verify(self, message: bytes, key: Key, verify: bytes) -> tuple[bytes, bool]:
        self._fpr(key.secret)
        signer = self._fpr(verify)
        result = self.gpg.decrypt_verify(message, check=False)
        if result.returncode != 0 and not result.plaintext:
            raise PeerError(_short(result.stderr))
        return result.plaintext, signer in result.goodsig_fprs

    def sign_detached(self, data: bytes, key: Key) -> bytes:
        fpr = self._fpr(key.secret)
        return self.gpg.run(
            ["--output", "-", "--local-user", fpr, "--detach-sign"], stdin=data
        ).stdout

    def verify_detached(self, data: bytes, signature: bytes, cert: bytes) -> bool:
        signer = self._fpr(cert)
        result = self.gpg.verify_detached(signature, data, check=False)
        return signer in result.goodsig_fprs

    def clearsign(self, text: bytes, key: Key) -> bytes:
        fpr = self._fpr(key.secret)
        return self.gpg.run(
            ["--output", "-", "--local-user", fpr, "--clearsign"], stdin=text
        ).stdout

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        signer = self._fpr(cert)
        result = self.gpg.decrypt_verify(message, check=False)
        return result.plaintext if signer in result.goodsig_fprs else None


class OpenPgpJs(Peer):
    name = "OpenPGP.js"
    binary = "node"
    tellable = frozenset({"strong", "sha1", "cast5", "aead", "zlib"})
    makes_rsa = True

    def available(self) -> bool:
        return shutil.which("node") is not None and (OPENPGPJS_DIR / "node_modules").is_dir()

    def _call(self, request: dict[str, object]) -> dict[str, object]:
        proc = subprocess.run(
            ["node", str(OPENPGPJS_DIR / "peer.mjs")],
            input=json.dumps(request).encode(),
            capture_output=True,
            check=False,
        )
        try:
            answer: dict[str, object] = json.loads(proc.stdout or b"{}")
        except ValueError:
            answer = {}
        if proc.returncode != 0 or "error" in answer:
            raise PeerError(_short(str(answer.get("error") or proc.stderr.decode())))
        return answer

    def version(self) -> str:
        return str(self._call({"op": "version"})["version"])

    def generate(self, email: str, *, rsa: bool, v6: bool = False) -> Key:
        request: dict[str, object] = {"op": "generate", "name": "openpgpjs", "email": email}
        if rsa:
            request["type"] = "rsa"
        if v6:
            request["config"] = {"v6": True}
        answer = self._call(request)
        return Key(str(answer["secret"]).encode(), str(answer["cert"]).encode(), email, "peer")

    def sign_encrypt(
        self, data: bytes, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        config: dict[str, object] = {}
        if tell.hash:
            config["hash"] = tell.hash.lower()
        if tell.cipher:
            config["cipher"] = tell.cipher.lower()
        if tell.compress:
            config["compress"] = "zlib"
        if tell.aead:
            config["aead"] = True
        answer = self._call(
            {
                "op": "sign_encrypt",
                "data": base64.b64encode(data).decode(),
                "signers": [key.secret.decode() for key in signers],
                "recipients": [cert.decode() for cert in recipients],
                "armor": armor,
                "config": config,
            }
        )
        return base64.b64decode(str(answer["message"]))

    def decrypt_verify(self, message: bytes, key: Key, verify: bytes) -> tuple[bytes, bool]:
        answer = self._call(
            {
                "op": "decrypt_verify",
                "message": base64.b64encode(message).decode(),
                "key": key.secret.decode(),
                "verify": verify.decode(),
            }
        )
        return base64.b64decode(str(answer["plaintext"])), bool(answer["verified"])

    def sign_detached(self, data: bytes, key: Key) -> bytes:
        answer = self._call(
            {
                "op": "sign_detached",
                "data": base64.b64encode(data).decode(),
                "key": key.secret.decode(),
            }
        )
        return base64.b64decode(str(answer["signature"]))

    def clearsign(self, text: bytes, key: Key) -> bytes:
        answer = self._call({"op": "clearsign", "text": text.decode(), "key": key.secret.decode()})
        return str(answer["message"]).encode()

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        answer = self._call(
            {"op": "verify_cleartext", "message": message.decode(), "cert": cert.decode()}
        )
        return str(answer["text"]).encode() if answer["verified"] else None

    def verify_detached(self, data: bytes, signature: bytes, cert: bytes) -> bool:
        answer = self._call(
            {
                "op": "verify_detached",
                "data": base64.b64encode(data).decode(),
                "signature": base64.b64encode(signature).decode(),
                "cert": cert.decode(),
            }
        )
        return bool(answer["verified"])


class Rnp(Peer):
    name = "RNP"
    binary = "rnp"
    tellable = frozenset({"strong", "sha1", "cast5", "aead", "zlib"})
    makes_rsa = True

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.home = self.dir / "home"
        self.home.mkdir(mode=0o700, exist_ok=True)
        self._imported: set[bytes] = set()

    def available(self) -> bool:
        return shutil.which("rnp") is not None and shutil.which("rnpkeys") is not None

    def version(self) -> str:
        return _run(["rnp", "--version"]).decode().splitlines()[0]

    def _keys(self, *args: str, stdin: bytes = b"") -> bytes:
        return _run(["rnpkeys", "--homedir", str(self.home), *args], stdin)

    def _rnp(self, *args: str, stdin: bytes = b"") -> bytes:
        return _run(["rnp", "--homedir", str(self.home), "--password", "", *args], stdin)

    def _import(self, data: bytes) -> None:
        if data not in self._imported:
            self._keys("--import", self.file(data))
            self._imported.add(data)

    def generate(self, email: str, *, rsa: bool) -> Key:
        # rnp's default key is RSA-2048 [SC] + [E], valid two years: the same whether asked or not.
        self._keys("--generate-key", "--userid", f"rnp <{email}>", "--password", "")
        secret = self._keys("--export-key", "--secret", email)
        cert = self._keys("--export-key", email)
        self._imported |= {secret, cert}
        return Key(secret, cert, email, "peer")

    def sign_encrypt(
        self, data: bytes, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        argv = ["--encrypt", "--output", "-"]
        if signers:
            argv.append("--sign")
        if armor:
            argv.append("--armor")
        if tell.hash:
            argv += ["--hash", tell.hash]
        if tell.cipher:
            argv += ["--cipher", tell.cipher]
        if tell.compress:
            argv += ["--zlib", "-z", "6"]
        if tell.aead:
            argv.append("--aead=OCB")
        for key in signers:
            self._import(key.secret)
            argv += ["--userid", key.email]
        for cert in recipients:
            self._import(cert)
            argv += ["--recipient", _email_of(cert)]
        return self._rnp(*argv, self.file(data))

    def decrypt_verify(self, message: bytes, key: Key, verify: bytes) -> tuple[bytes, bool]:
        self._import(key.secret)
        self._import(verify)
        proc = subprocess.run(
            ["rnp", "--homedir", str(self.home), "--password", "", "--decrypt", "--output", "-",
             self.file(message)],
            capture_output=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0 and not proc.stdout:
            raise PeerError(_short(proc.stderr.decode("utf-8", "replace")))
        return proc.stdout, proc.returncode == 0 and b"Good signature" in proc.stderr

    def sign_detached(self, data: bytes, key: Key) -> bytes:
        self._import(key.secret)
        return self._rnp(
            "--sign", "--detach", "--userid", key.email, "--output", "-", self.file(data)
        )

    def clearsign(self, text: bytes, key: Key) -> bytes:
        self._import(key.secret)
        return self._rnp("--clearsign", "--userid", key.email, "--output", "-", self.file(text))

    def verify_cleartext(self, message: bytes, cert: bytes) -> bytes | None:
        self._import(cert)
        proc = subprocess.run(
            ["rnp", "--homedir", str(self.home), "--verify-cat", "--output", "-",
             self.file(message)],
            capture_output=True, check=False,
        )  # fmt: skip
        ok = proc.returncode == 0 and b"Good signature" in proc.stderr
        return proc.stdout if ok else None

    def verify_detached(self, data: bytes, signature: bytes, cert: bytes) -> bool:
        self._import(cert)
        data_path = self.file(data)
        sig_path = data_path + ".sig"
        Path(sig_path).write_bytes(signature)
        proc = subprocess.run(
            ["rnp", "--homedir", str(self.home), "--verify", sig_path],
            capture_output=True, check=False,
        )  # fmt: skip
        return proc.returncode == 0 and b"Good signature" in proc.stderr


def _email_of(cert: bytes) -> str:
    """The e-mail in the first user ID of an armored certificate (ours or a peer's)."""
    try:
        match = re.search(r"<([^>]+)>", openpgp.read_certificates(cert)[0].user_ids[0])
    except (PushprovError, IndexError):
        match = None
    if match is None:
        raise PeerError("certificate without a readable user ID")
    return match.group(1)


PEER_CLASSES: tuple[type[Peer], ...] = (Sqop, Gosop, Pgpainless, GnuPG, OpenPgpJs, Rnp)
PEER_NAMES = tuple(cls.name for cls in PEER_CLASSES)


# ---------------------------------------------------------------------------------------------
# What pushprov sees


@dataclasses.dataclass(frozen=True)
class Inspection:
    cipher: str
    hashes: tuple[str, ...]
    compression: str
    signers: int


def inspect(message: bytes, key: openpgp.SecretKey) -> Inspection:
    """What a peer's message really used, read from its packets (after decrypting with ``key``)."""
    binary = _message.decode_message(message)
    pkesks, seipd = _message._split_envelope(binary)
    decrypted = _message._decrypt(pkesks, seipd, [key])
    if decrypted is None:
        raise PeerError("cannot decrypt to inspect")
    _key, spec, inner = decrypted
    compression = "none"
    packets = list(read_packets(inner))
    if packets and packets[0][0] == 8:
        compression = _COMPRESSION.get(packets[0][1][0], "unknown")
    flat = _message._flatten(inner, GOOGLE_PROFILE, 0, [0])
    hashes = tuple(_HASHES.get(body[3], f"hash-{body[3]}") for tag, body in flat if tag == 2)
    return Inspection(spec.name, hashes, compression, len(hashes))


# ---------------------------------------------------------------------------------------------
# The world: our keys, each peer's keys


class World:
    """Keys made once per run: ours (RSA-2048); per peer, two RSA signer keys and its default."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.at = now()
        made = [
            openpgp.generate_key(f"pushprov {n} <{n}@issuer.example>", bits=2048, at=self.at)
            for n in ("a", "b", "c", "d")
        ]
        self.ours = made[:2]  # our signer (a) and our two recipients (a, b)
        self._handed = [
            Key(
                k.armor().encode(),
                k.certificate.armor().encode(),
                f"{n}@issuer.example",
                "pushprov",
            )
            for k, n in zip(made[2:], ("c", "d"), strict=True)
        ]
        # Our signer's key as a file for pushprov-sop, written before any peer thread reads it.
        self.our_key_file = workdir / "our-a.key"
        self.our_key_file.write_bytes(self.ours[0].armor().encode())
        self._peers: dict[str, Peer] = {}
        self.seconds: dict[str, float] = {}
        self._messages: dict[
            tuple[str, tuple[Key, ...], tuple[bytes, ...], bool, Tell], bytes
        ] = {}  # wall time per peer, for the summary line
        self._rsa: dict[str, list[Key] | PeerError] = {}
        self._default: dict[str, Key | PeerError] = {}

    def peer(self, name: str) -> Peer:
        if name not in self._peers:
            cls = next(c for c in PEER_CLASSES if c.name == name)
            self._peers[name] = cls(self.workdir)
        return self._peers[name]

    def rsa_keys(self, peer: Peer) -> list[Key]:
        """Two RSA keys the peer signs and decrypts with: its own where it makes RSA, else ours."""
        if peer.name not in self._rsa:
            if peer.makes_rsa:
                self._rsa[peer.name] = [
                    peer.generate(f"{peer.name.lower()}-{i}@peer.example", rsa=True) for i in (1, 2)
                ]
            else:
                self._rsa[peer.name] = self._handed
        keys = self._rsa[peer.name]
        assert isinstance(keys, list)
        return keys

    def default_key(self, peer: Peer) -> Key:
        if peer.name not in self._default:
            try:
                self._default[peer.name] = peer.generate(
                    f"{peer.name.lower()}-default@peer.example", rsa=False
                )
            except PeerError as error:
                self._default[peer.name] = error
        key = self._default[peer.name]
        if isinstance(key, PeerError):
            raise key
        return key

    def sign_encrypt(
        self, peer: Peer, signers: Sequence[Key], recipients: Sequence[bytes], *, armor: bool,
        tell: Tell,
    ) -> bytes:  # fmt: skip
        """PAYLOAD signed and encrypted by the peer; made once per request (cells share them)."""
        request = (peer.name, tuple(signers), tuple(recipients), armor, tell)
        if request not in self._messages:
            made = peer.sign_encrypt(PAYLOAD, signers, recipients, armor=armor, tell=tell)
            self._messages[request] = made
        return self._messages[request]

    def our_cert(self, index: int) -> bytes:
        return self.ours[index].certificate.armor().encode()

    def close(self) -> None:
        for peer in self._peers.values():
            if isinstance(peer, GnuPG):
                peer.close()


# ---------------------------------------------------------------------------------------------
# Cells


def _describe(seen: Inspection) -> str:
    return (
        f"{'+'.join(seen.hashes) or 'no signature'}, {seen.cipher}, compression {seen.compression}"
    )


def _open_theirs(world: World, message: bytes, signers: Sequence[Key], recipient: int) -> Outcome:
    """Open a peer's message as pushprov does; report what the peer chose."""
    ours = world.ours[recipient]
    try:
        certs = [c for key in signers for c in openpgp.read_certificates(key.cert)]
        opened = openpgp.open_message(message, decrypt_with=[ours], verify_with=certs, at=now())
    except PushprovError as error:
        detail = f"{error.code}: {error.message}"
        refused = _profile_refusal(error)
        # The inspection is only a note on the refusal: it may fail where opening failed.
        with contextlib.suppress(PushprovError, PeerError):
            seen = inspect(message, ours)
            detail += f" (peer used {_describe(seen)})"
            # A cipher outside the profile is never run, so it fails as any decryption does.
            refused = refused or seen.cipher not in GOOGLE_PROFILE.ciphers
        return Outcome("refused by profile" if refused else "FAILED", detail)
    seen = inspect(message, ours)
    if opened.plaintext != PAYLOAD:
        return Outcome("FAILED", "the plaintext differs")
    if len(opened.signatures) != len(signers):
        if seen.signers < len(signers) and len(opened.signatures) == seen.signers:
            return Outcome(
                "peer limitation",
                f"asked for {len(signers)} signatures, it wrote {seen.signers} (read from the"
                f" packets), which verified: {_describe(seen)}",
            )
        return Outcome("FAILED", f"{len(opened.signatures)} of {len(signers)} signatures verified")
    return Outcome("ok", _describe(seen))


def _profile_refusal(error: PushprovError) -> bool:
    return error.code in ("policy_violation", "unsupported", "signature_invalid", "key_invalid")


def cell_our_signature(world: World, peer: Peer) -> Outcome:
    """pushprov-sop sign (in process), the peer verifies with our certificate."""
    status, signature, err = _sop_run(["sign", "--no-armor", str(world.our_key_file)], PAYLOAD)
    if status != 0:
        return Outcome("FAILED", f"pushprov-sop sign: {err.strip()}")
    if peer.verify_detached(PAYLOAD, signature, world.our_cert(0)):
        return Outcome("ok", "SHA384 signature by our RSA key verified")
    return Outcome("FAILED", "the peer did not verify our signature")


def cell_gopc(world: World, peer: Peer) -> Outcome:
    """A GOPC sealed by us (signed by our key) to the peer's RSA key; the peer opens it."""
    theirs = world.rsa_keys(peer)[0]
    gopc = Gopc(server_session_id="interop-matrix", card=Card(Pan(_TEST_PAN), "12", "30"))
    cert = openpgp.read_certificates(theirs.cert)[0]
    sealed = seal_gopc(
        gopc, sign_with=[world.ours[0]], encrypt_to=[cert], encoding=Encoding.BINARY, at=now()
    )
    plaintext, verified = peer.decrypt_verify(sealed, theirs, world.our_cert(0))
    if plaintext != gopc.to_json():
        return Outcome("FAILED", "the peer's plaintext differs from the GOPC")
    if not verified:
        return Outcome("FAILED", "the peer decrypted but did not verify our signature")
    return Outcome("ok", f"decrypted and verified (key made by {theirs.origin})")


def _sign_encrypt_cell(
    signers: int, recipients: int, *, armor: bool, tell: Tell = Tell()
) -> Callable[[World, Peer], Outcome]:
    def cell(world: World, peer: Peer) -> Outcome:
        keys = world.rsa_keys(peer)[:signers]
        certs = [world.our_cert(i) for i in range(recipients)]
        message = world.sign_encrypt(peer, keys, certs, armor=armor, tell=tell)
        if armor != message.startswith(b"-----BEGIN PGP MESSAGE-----"):
            return Outcome("FAILED", "armored when binary was asked, or the reverse")
        # Two recipients: open with the second, so its PKESK is the one that must work.
        outcome = _open_theirs(world, message, keys, recipients - 1)
        origin = "" if keys[0].origin == "peer" else " (signer keys made by pushprov)"
        return dataclasses.replace(outcome, detail=outcome.detail + origin)

    return cell


def cell_sop_decrypt(world: World, peer: Peer) -> Outcome:
    """The peer's sign+encrypt opened through pushprov-sop decrypt (in process), not the API."""
    signer = world.rsa_keys(peer)[0]
    message = world.sign_encrypt(peer, [signer], [world.our_cert(0)], armor=True, tell=Tell())
    files = world.workdir / f"sop-{peer.name}"
    files.mkdir(exist_ok=True)
    (files / "ours.key").write_bytes(world.ours[0].armor().encode())
    (files / "theirs.cert").write_bytes(signer.cert)
    argv = ["decrypt", "--verify-with", str(files / "theirs.cert"), "--verifications-out",
            str(files / "verifications"), str(files / "ours.key")]  # fmt: skip
    status, out, err = _sop_run(argv, message)
    if status != 0:
        return Outcome("FAILED", err.strip())
    lines = (files / "verifications").read_text().splitlines()
    if out != PAYLOAD or len(lines) != 1:
        return Outcome("FAILED", f"plaintext {'ok' if out == PAYLOAD else 'differs'}, {lines}")
    return Outcome("ok", "exit 0, one verification line")


def cell_compressed(world: World, peer: Peer) -> Outcome:
    if "zlib" not in peer.tellable:
        message = world.sign_encrypt(peer, world.rsa_keys(peer)[:1], [world.our_cert(0)],
                                    armor=False, tell=Tell())  # fmt: skip
        seen = inspect(message, world.ours[0])
        if seen.compression == "none":
            return Outcome("n/a", "SOP has no compression option; it does not compress by default")
        return _open_theirs(world, message, world.rsa_keys(peer)[:1], 0)
    return _sign_encrypt_cell(1, 1, armor=False, tell=Tell(compress=True))(world, peer)


def cell_told_strong(world: World, peer: Peer) -> Outcome:
    if "strong" not in peer.tellable:
        message = world.sign_encrypt(peer, world.rsa_keys(peer)[:1], [world.our_cert(0)],
                                    armor=False, tell=Tell())  # fmt: skip
        seen = inspect(message, world.ours[0])
        return Outcome(
            "n/a", f"cannot be told (SOP has no such option); it picks {_describe(seen)}"
        )
    return _sign_encrypt_cell(1, 1, armor=False, tell=Tell(hash="SHA384", cipher="AES256"))(
        world, peer
    )


def cell_their_signature(world: World, peer: Peer) -> Outcome:
    """The peer's detached signature, checked by pushprov-sop verify (in process)."""
    key = world.rsa_keys(peer)[0]
    signature = peer.sign_detached(PAYLOAD, key)
    sig_file, cert_file = world.workdir / f"{peer.name}.sig", world.workdir / f"{peer.name}.cert"
    sig_file.write_bytes(signature)
    cert_file.write_bytes(key.cert)
    status, out, err = _sop_run(["verify", str(sig_file), str(cert_file)], PAYLOAD)
    hash_name = _HASHES.get(_first_sig_hash(signature), "?")
    if status == 0 and out:
        return Outcome("ok", f"{hash_name} signature verified")
    if status == int(sop_face.SopFailure.NO_SIGNATURE):
        return Outcome("FAILED", f"{hash_name}: {err.strip()}")
    return Outcome("FAILED", err.strip())


def _first_sig_hash(signature: bytes) -> int:
    try:
        binary = openpgp.dearmor_data(signature)
        return next(body[3] for tag, body in read_packets(binary) if tag == 2)
    except (PushprovError, StopIteration, IndexError):
        return 0


CLEARTEXT = b"Issuer notice\n-- dash-escaped line\ntrailing spaces   \n"
_CLEARTEXT_LINES = [b"Issuer notice", b"-- dash-escaped line", b"trailing spaces"]


def _text_lines(text: bytes) -> list[bytes]:
    """The lines of a verified text, whatever final newline each implementation adds or keeps."""
    return [line.rstrip() for line in text.rstrip(b"\r\n").splitlines()]


def cell_our_cleartext(world: World, peer: Peer) -> Outcome:
    """pushprov-sop inline-sign --as=clearsigned (in process); the peer verifies it."""
    argv = ["inline-sign", "--as=clearsigned", str(world.our_key_file)]
    status, message, err = _sop_run(argv, CLEARTEXT)
    if status != 0:
        return Outcome("FAILED", f"pushprov-sop inline-sign: {err.strip()}")
    text = peer.verify_cleartext(message, world.our_cert(0))
    if text is None:
        return Outcome("FAILED", "the peer did not verify our cleartext signature")
    if _text_lines(text) != _CLEARTEXT_LINES:
        return Outcome("FAILED", "the peer's text differs")
    return Outcome("ok", "SHA384 text signature verified, dash-escaping undone")


def cell_their_cleartext(world: World, peer: Peer) -> Outcome:
    """The peer's cleartext-signed message, checked by pushprov-sop inline-verify (in process)."""
    key = world.rsa_keys(peer)[0]
    message = peer.clearsign(CLEARTEXT, key)
    cert_file = world.workdir / f"{peer.name}-cleartext.cert"
    cert_file.write_bytes(key.cert)
    status, text, err = _sop_run(["inline-verify", str(cert_file)], message)
    if status != 0 and peer.verify_cleartext(message, key.cert) is None:
        # The peer's own verifier rejects it too; show whether trailing whitespace is the cause.
        plain = peer.clearsign(CLEARTEXT.replace(b"   \n", b"\n"), key)
        status_plain, _, _ = _sop_run(["inline-verify", str(cert_file)], plain)
        cause = " (verifies when no line has trailing whitespace)" if status_plain == 0 else ""
        return Outcome(
            "peer limitation",
            f"pushprov-sop: {err.strip().split(': ', 1)[1]}; its own inline-verify rejects the"
            f" same message{cause}",
        )
    if status != 0:
        return Outcome("FAILED", err.strip())
    if _text_lines(text) != _CLEARTEXT_LINES:
        return Outcome("FAILED", "the text differs")
    hash_line = next((ln for ln in message.splitlines() if ln.startswith(b"Hash:")), b"no Hash:")
    return Outcome("ok", f"verified ({hash_line.decode()})")


def cell_their_rsa_cert(world: World, peer: Peer) -> Outcome:
    if not peer.makes_rsa:
        return Outcome("n/a", "makes no RSA key (SOP has no key-type option in this version)")
    key = world.rsa_keys(peer)[0]
    cert = openpgp.read_certificates(key.cert)[0]
    # Key IDs dropped from the notes, so the README table reads the same from run to run.
    problems = [
        re.sub(r"subkey [0-9A-F]{16}", "subkey", problem)
        for problem in cert.policy_problems(GOOGLE_PROFILE, now())
    ]
    bits = cert.key_infos()[0].bits
    if problems:
        return Outcome("ok", f"RSA-{bits} read; outside Google's profile: {'; '.join(problems)}")
    return Outcome("ok", f"RSA-{bits} read and within Google's profile")


def cell_their_default_key(world: World, peer: Peer) -> Outcome:
    key = world.default_key(peer)
    try:
        cert = openpgp.read_certificates(key.cert)[0]
    except PushprovError as error:
        return Outcome("refused by profile", f"{error.code}: {error.message} ({_algorithms(key)})")
    info = cert.key_infos()
    return Outcome("ok", ", ".join(f"{i.algorithm}-{i.bits} [{i.capabilities}]" for i in info))


def _algorithms(key: Key) -> str:
    names = {1: "RSA", 16: "Elgamal", 17: "DSA", 18: "ECDH", 19: "ECDSA", 22: "EdDSA",
             25: "X25519", 27: "Ed25519"}  # fmt: skip
    try:
        binary = openpgp.dearmor_data(key.cert)
        found = []
        for tag, body in read_packets(binary):
            if tag in (6, 14):
                found.append(f"v{body[0]} {names.get(body[5], str(body[5]))}")
        return ", ".join(found)
    except (PushprovError, IndexError):
        return "unreadable"


def cell_refuse_unsigned(world: World, peer: Peer) -> Outcome:
    message = world.sign_encrypt(peer, [], [world.our_cert(0)], armor=False, tell=Tell())
    return _open_theirs(world, message, world.rsa_keys(peer)[:1], 0)


def _refusal_cell(what: str, tell: Tell) -> Callable[[World, Peer], Outcome]:
    def cell(world: World, peer: Peer) -> Outcome:
        if what not in peer.tellable:
            return Outcome("n/a", f"cannot be told to use {_WHAT[what]}")
        signers = world.rsa_keys(peer)[:1]
        try:
            message = world.sign_encrypt(peer, signers, [world.our_cert(0)], armor=False,
                                        tell=tell)  # fmt: skip
        except PeerError as error:
            return Outcome("n/a", f"the peer refuses to make it: {error}")
        outcome = _open_theirs(world, message, signers, 0)
        made = _made_what_was_told(message, world.ours[0], what)
        if made is None:
            return outcome
        # The peer was told, and wrote something else: say what, and what pushprov made of it.
        verdict = "n/a" if outcome.status == "ok" else outcome.status
        return Outcome(verdict, f"told {_WHAT[what]}, it wrote {made}; {outcome.detail}")

    return cell


def _made_what_was_told(message: bytes, key: openpgp.SecretKey, what: str) -> str | None:
    """None when the message uses what the peer was told to; else what it used instead."""
    binary = _message.decode_message(message)
    tags = [tag for tag, _body in read_packets(binary)]
    if what == "aead":
        return None if 20 in tags or _seipd_version(binary) == 2 else "SEIPD v1 (no AEAD)"
    seen = inspect(message, key)
    if what == "sha1":
        return None if "SHA1" in seen.hashes else "+".join(seen.hashes)
    return None if seen.cipher == "CAST5" else seen.cipher


def _seipd_version(binary: bytes) -> int:
    return next((body[0] for tag, body in read_packets(binary) if tag == 18 and body), 0)


_WHAT = {"sha1": "SHA-1", "cast5": "CAST5", "aead": "AEAD"}


def cell_refuse_v6(world: World, peer: Peer) -> Outcome:
    if not isinstance(peer, OpenPgpJs):
        return Outcome("n/a", "makes no v6 key in this version")
    key = peer.generate("openpgpjs-v6@peer.example", rsa=False, v6=True)
    try:
        openpgp.read_certificates(key.cert)
    except PushprovError as error:
        return Outcome("refused by profile", f"{error.code}: {error.message} ({_algorithms(key)})")
    return Outcome("FAILED", "a v6 key was read")


@dataclasses.dataclass(frozen=True)
class Cell:
    key: str
    title: str
    run: Callable[[World, Peer], Outcome]


CELLS: tuple[Cell, ...] = (
    Cell("our-signature", "verifies our detached signature (pushprov-sop sign)",
         cell_our_signature),
    Cell("gopc", "opens a GOPC sealed and signed by us", cell_gopc),
    Cell("se-1x1-armor", "its sign+encrypt opened by us: 1 signer, 1 recipient, armored",
         _sign_encrypt_cell(1, 1, armor=True)),
    Cell("se-1x1-binary", "… 1 signer, 1 recipient, binary", _sign_encrypt_cell(1, 1, armor=False)),
    Cell("se-2x1", "… 2 signers, 1 recipient", _sign_encrypt_cell(2, 1, armor=False)),
    Cell("se-1x2", "… 1 signer, 2 recipients (opened with the 2nd)",
         _sign_encrypt_cell(1, 2, armor=True)),
    Cell("sop-decrypt", "… opened by pushprov-sop decrypt", cell_sop_decrypt),
    Cell("se-compressed", "… compressed (ZLIB where it can be told)", cell_compressed),
    Cell("told-strong", "told SHA-384 + AES-256, opened by us", cell_told_strong),
    Cell("their-signature", "its detached signature verified by us (pushprov-sop verify)",
         cell_their_signature),
    Cell("our-cleartext", "verifies our cleartext-signed message (pushprov-sop inline-sign)",
         cell_our_cleartext),
    Cell("their-cleartext", "its cleartext-signed message verified by us (pushprov-sop"
         " inline-verify)", cell_their_cleartext),
    Cell("their-rsa-cert", "its RSA certificate read by us", cell_their_rsa_cert),
    Cell("their-default-key", "its default key read by us", cell_their_default_key),
    Cell("refuse-unsigned", "its unsigned encryption", cell_refuse_unsigned),
    Cell("refuse-sha1", "its SHA-1 signature", _refusal_cell("sha1", Tell(hash="SHA1"))),
    Cell("refuse-cast5", "its CAST5 encryption", _refusal_cell("cast5", Tell(cipher="CAST5"))),
    Cell("refuse-aead", "its AEAD encryption (OCB)", _refusal_cell("aead", Tell(aead=True))),
    Cell("refuse-v6", "its v6 key", cell_refuse_v6),
)  # fmt: skip
CELL_KEYS = tuple(cell.key for cell in CELLS)

_SOP_CANNOT_BE_TOLD: dict[str, Status] = {
    "told-strong": "n/a",
    "refuse-sha1": "n/a",
    "refuse-cast5": "n/a",
    "refuse-aead": "n/a",
    "refuse-v6": "n/a",
}
#: What each cell must give (cells not named here: "ok"). The tests hold the peers to it; a
#: change in a peer's behaviour shows up as a failing test, to be explained before it is pinned.
EXPECTED: dict[str, dict[str, Status]] = {
    "sqop": {
        **_SOP_CANNOT_BE_TOLD,
        "se-compressed": "n/a",
        "their-rsa-cert": "n/a",
        "their-default-key": "refused by profile",
        "refuse-unsigned": "refused by profile",
    },
    "gosop": {
        **_SOP_CANNOT_BE_TOLD,
        "our-cleartext": "n/a",
        "their-cleartext": "n/a",
        "se-2x1": "peer limitation",
        "se-compressed": "n/a",
        "refuse-unsigned": "refused by profile",
    },
    "pgpainless-cli": {
        **_SOP_CANNOT_BE_TOLD,
        "their-cleartext": "peer limitation",
        "their-rsa-cert": "n/a",
        "their-default-key": "refused by profile",
        "refuse-unsigned": "refused by profile",
    },
    "GnuPG": {
        "refuse-unsigned": "refused by profile",
        "refuse-sha1": "refused by profile",
        "refuse-cast5": "refused by profile",
        "refuse-aead": "n/a",
        "refuse-v6": "n/a",
    },
    "OpenPGP.js": {
        "their-default-key": "refused by profile",
        "refuse-unsigned": "refused by profile",
        "refuse-sha1": "n/a",
        "refuse-cast5": "refused by profile",
        "refuse-aead": "n/a",
        "refuse-v6": "refused by profile",
    },
    "RNP": {
        "refuse-unsigned": "refused by profile",
        "refuse-sha1": "refused by profile",
        "refuse-cast5": "refused by profile",
        "refuse-aead": "refused by profile",
        "refuse-v6": "n/a",
    },
}


def expected(peer: str, cell: str) -> Status:
    return EXPECTED[peer].get(cell, "ok")


def _sop_run(argv: list[str], stdin: bytes) -> tuple[int, bytes, str]:
    with tempfile.TemporaryFile() as stream:
        stream.write(stdin)
        stream.seek(0)
        return sop_face.run(argv, stream)


def run_cell(world: World, peer_name: str, cell_key: str) -> Outcome:
    peer = world.peer(peer_name)
    cell = next(c for c in CELLS if c.key == cell_key)
    try:
        return cell.run(world, peer)
    except PeerUnableError as error:
        return Outcome("n/a", str(error))
    except PeerError as error:
        return Outcome("FAILED", f"peer: {error}")


# ---------------------------------------------------------------------------------------------
# The table


def build_table(results: list[tuple[str, str, Cell, Outcome]]) -> str:
    lines = [
        "| implementation | version | cell | result |",
        "|---|---|---|---|",
    ]
    for name, version, cell, outcome in results:
        detail = outcome.detail.replace("|", "\\|")
        lines.append(f"| {name} | {version} | {cell.title} | **{outcome.status}**: {detail} |")
    return "\n".join(lines)


def rewrite_readme(table: str, readme: Path = README) -> None:
    text = readme.read_text(encoding="utf-8")
    start, end = text.index(START), text.index(END)
    readme.write_text(
        text[: start + len(START)] + "\n" + table + "\n" + text[end:], encoding="utf-8"
    )


Result = tuple[str, str, Cell, Outcome]


def run_peer(world: World, name: str) -> list[Result]:
    """Every cell against one peer, in order (cells share the peer's keys)."""
    peer = world.peer(name)
    if not peer.available():
        return [(name, "not installed", cell, Outcome("FAILED", "not installed")) for cell in CELLS]
    began = time.monotonic()
    version = peer.version()
    rows = [(name, version, cell, run_cell(world, name, cell.key)) for cell in CELLS]
    world.seconds[name] = time.monotonic() - began
    return rows


def run_matrix(world: World, names: Sequence[str] = PEER_NAMES) -> list[Result]:
    """All peers at once (each mostly waits on its own subprocesses), results in table order."""
    for name in names:
        world.peer(name)  # made here, not in the threads
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [pool.submit(run_peer, world, name) for name in names]
        return [row for future in futures for row in future.result()]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # --peer NAME (repeatable) runs only those peers, and then never rewrites the README.
    only = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--peer"]
    write = "--no-write" not in args and not only
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pp-matrix-") as tmp:
        world = World(Path(tmp))
        try:
            results = run_matrix(world, only or PEER_NAMES)
        finally:
            world.close()
        timings = ", ".join(f"{name} {secs:.0f} s" for name, secs in world.seconds.items())
    for name, _version, cell, outcome in results:
        print(f"{name:15} {cell.key:18} {outcome.status}: {outcome.detail}")
    if write:
        rewrite_readme(build_table(results))
    failed = sum(1 for *_, o in results if o.status == "FAILED")
    print(f"{len(results)} cells, {failed} failed, {time.monotonic() - began:.1f} s ({timings})")
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
