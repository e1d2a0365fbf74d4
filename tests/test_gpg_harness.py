"""Tests of the GnuPG driver (tests/gpg.py) against the real gpg binary.

Each test proves that a driver method does what its docstring says, so that interop tests can
trust it. Structure claims are checked with gpg's own ``--list-packets``.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from .gpg import (
    DAVE_PASSPHRASE,
    GPGCONF_BIN,
    DecryptResult,
    Gpg,
    GpgError,
    GpgWorld,
    StatusLine,
    _parse_signatures,
    gpg_available,
    packet_tags,
)

pytestmark = pytest.mark.gpg

MSG = b'{"paymentCard":{"accountNumber":"4111111111111111"}}'
DAY = 86400


# --- helpers ----------------------------------------------------------------------------------


def _packets(data: bytes) -> list[tuple[int, bytes]]:
    """Minimal OpenPGP packet splitter (old and new format, no partial lengths): (tag, body)."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        ctb = data[i]
        assert ctb & 0x80, f"not a packet at {i}"
        if ctb & 0x40:  # new format
            tag, first = ctb & 0x3F, data[i + 1]
            if first < 192:
                length, hlen = first, 2
            elif first < 224:
                length, hlen = ((first - 192) << 8) + data[i + 2] + 192, 3
            else:
                assert first == 255, "partial lengths not expected here"
                length, hlen = int.from_bytes(data[i + 2 : i + 6], "big"), 6
        else:
            tag, lt = (ctb >> 2) & 0x0F, ctb & 3
            size = {0: 1, 1: 2, 2: 4}[lt]
            length, hlen = int.from_bytes(data[i + 1 : i + 1 + size], "big"), 1 + size
        out.append((tag, data[i + hlen : i + hlen + length]))
        i += hlen + length
    return out


def _s2k_usages(secret_export: bytes) -> list[int]:
    """S2K usage octet of every secret (sub)key packet (tags 5 and 7) of an RSA v4 export."""
    usages = []
    for tag, body in _packets(secret_export):
        if tag not in (5, 7):
            continue
        assert body[0] == 4 and body[5] == 1, "v4 RSA expected"
        pos = 6
        for _ in range(2):  # n, e
            bits = int.from_bytes(body[pos : pos + 2], "big")
            pos += 2 + (bits + 7) // 8
        usages.append(body[pos])
    return usages


@pytest.fixture
def peer(gpg: Gpg, gpg_world: GpgWorld) -> Gpg:
    """A second home: carol's secret key, everybody's public keys."""
    gpg_world.import_public(gpg)
    gpg_world.import_secret(gpg, "carol")
    return gpg


# --- the home itself --------------------------------------------------------------------------


@pytest.mark.skipif(not gpg_available(), reason="GnuPG not installed")
def test_home_is_private_and_close_kills_the_agent() -> None:
    g = Gpg.create()
    assert stat.S_IMODE(os.stat(g.home).st_mode) == 0o700
    assert "allow-loopback-pinentry" in (g.home / "gpg-agent.conf").read_text()
    g.gen_key("Tmp <tmp@example.com>", algo="rsa2048", subkey=False)  # starts gpg-agent
    socket = subprocess.run(
        [GPGCONF_BIN, "--homedir", str(g.home), "--list-dirs", "agent-socket"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert os.path.exists(socket)
    g.close()
    assert not os.path.exists(socket)
    assert not g.home.exists()
    g.close()  # idempotent


def test_home_path_too_long_is_refused(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(ValueError, match="too long"):
        Gpg(tmp_path_factory.mktemp("x") / ("y" * 120))


# --- keys -------------------------------------------------------------------------------------


def test_world_key_shapes(gpg_world: GpgWorld) -> None:
    home, base = gpg_world.home, gpg_world.base
    alice = home.list_keys(gpg_world["alice"].fpr)
    assert alice.uids == ("Alice <alice@example.com>",)
    assert (alice.primary.algo, alice.primary.length) == (1, 2048)
    assert alice.primary.capabilities == "sc"
    assert alice.primary.created == base  # faked creation time
    assert alice.primary.expires == base + 365 * DAY
    assert alice.primary.validity == "u"
    assert [k.capabilities for k in alice.subkeys] == ["e"]
    assert alice.encryption_subkey.fingerprint == gpg_world["alice"].encryption_fpr

    sam = home.list_keys(gpg_world["sam"].fpr)
    assert sam.primary.capabilities == "c"
    assert sorted(k.capabilities for k in sam.subkeys) == ["e", "s"]
    assert gpg_world["sam"].signing_fpr == sam.subkeys_with("s")[0].fingerprint

    erin = home.list_keys(gpg_world["erin"].fpr)
    assert not erin.primary.expired
    assert erin.encryption_subkey.expired
    assert erin.encryption_subkey.expires == base + DAY
    assert "E" not in erin.key_capabilities  # gpg no longer considers the key encryption-capable

    ed = home.list_keys(gpg_world["ed"].fpr)
    assert ed.primary.expired and ed.primary.expires == base + DAY

    assert home.list_keys(gpg_world["rex"].fpr).primary.revoked


def test_gen_key_default_is_rsa3072_with_encryption_subkey(gpg: Gpg) -> None:
    fpr = gpg.gen_key("Def <def@example.com>", at=1_700_000_000)
    listing = gpg.list_keys(fpr)
    assert listing.primary.fingerprint == fpr and len(fpr) == 40
    assert [(k.length, k.capabilities) for k in (listing.primary, *listing.subkeys)] == [
        (3072, "sc"),
        (3072, "e"),
    ]
    assert listing.primary.expires == 1_700_000_000 + 365 * DAY
    assert listing.primary.expired  # made in 2023, one year of life


def test_secret_export_protection(gpg_world: GpgWorld) -> None:
    dave = gpg_world["dave"]
    alice = gpg_world["alice"]
    assert dave.secret.startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----")
    binary_dave = gpg_world.home.export_secret(dave.fpr, passphrase=DAVE_PASSPHRASE, armor=False)
    binary_alice = gpg_world.home.export_secret(alice.fpr, armor=False)
    assert _s2k_usages(binary_dave) == [254, 254]
    assert _s2k_usages(binary_alice) == [0, 0]
    dump = gpg_world.home.list_packets(binary_dave)
    assert "iter+salt S2K" in dump and "SHA1 protection" in dump
    assert "protect count: 65536" in dump  # the agent's s2k-count from gpg-agent.conf
    assert "checksum:" in gpg_world.home.list_packets(binary_alice)


def test_export_secret_with_wrong_passphrase_fails(gpg_world: GpgWorld) -> None:
    with pytest.raises(GpgError) as err:
        gpg_world.home.export_secret(gpg_world["dave"].fpr, passphrase="wrong")
    assert err.value.returncode != 0


def test_import_returns_fingerprints_and_trust(gpg: Gpg, gpg_world: GpgWorld) -> None:
    both = gpg_world["alice"].public + gpg_world["carol"].public
    assert gpg.import_key(both) == [gpg_world["alice"].fpr, gpg_world["carol"].fpr]
    assert gpg.list_keys(gpg_world["alice"].fpr).primary.validity in ("-", "q", "")
    gpg.trust(gpg_world["alice"].fpr)
    assert gpg.list_keys(gpg_world["alice"].fpr).primary.validity == "u"
    with pytest.raises(LookupError):
        gpg.list_keys(gpg_world["dave"].fpr, secret=True)


def test_import_protected_secret_then_use_it(gpg: Gpg, gpg_world: GpgWorld) -> None:
    dave = gpg_world["dave"]
    assert gpg.import_key(dave.secret) == [dave.fpr]
    assert gpg.list_keys(dave.fpr, secret=True).primary.fingerprint == dave.fpr
    with pytest.raises(GpgError):
        gpg.sign_only(MSG, signers=[dave.fpr], passphrase="wrong")
    with pytest.raises(GpgError):
        gpg.sign_only(MSG, signers=[dave.fpr])  # no passphrase and nothing cached
    signed = gpg.sign_only(MSG, signers=[dave.fpr], passphrase=DAVE_PASSPHRASE)
    assert gpg_world.home.decrypt_verify(signed).goodsig_fprs == {dave.fpr}


def test_set_expire_primary_and_subkeys(gpg: Gpg) -> None:
    t = 1_750_000_000
    fpr = gpg.gen_key("Exp <exp@example.com>", algo="rsa2048", expire="1y", at=t)
    # a new self-signature must be newer than the last one: with a faked (frozen) clock, the
    # same `at` twice makes gpg wait ~5 s and fail with "Time conflict"; so step `at` forward
    gpg.set_expire(fpr, "2d", at=t + 10)
    listing = gpg.list_keys(fpr)
    assert listing.primary.expires == t + 10 + 2 * DAY  # relative to (faked) now
    assert listing.encryption_subkey.expires == t + 365 * DAY
    gpg.set_expire(fpr, "3d", subkeys="*", at=t + 20)
    assert gpg.list_keys(fpr).encryption_subkey.expires == t + 20 + 3 * DAY
    gpg.set_expire(fpr, "never", at=t + 30)
    assert gpg.list_keys(fpr).primary.expires is None


def test_revoke_key_protected_needs_passphrase(gpg: Gpg) -> None:
    fpr = gpg.gen_key("R <r@example.com>", algo="rsa2048", passphrase="pw", subkey=False)
    with pytest.raises(GpgError):
        gpg.revoke_key(fpr, passphrase="not pw")
    assert not gpg.list_keys(fpr).primary.revoked
    cert = gpg.revoke_key(
        fpr, reason=2, description="superseded", passphrase="pw", at=1_800_000_000
    )
    dump = gpg.list_packets(cert)
    assert "sigclass 0x20" in dump and "revocation reason 0x02" in dump
    assert "created 1800000000" in dump
    assert gpg.list_keys(fpr).primary.revoked


# --- messages: the GOPC shape ------------------------------------------------------------------


def test_round_trip_between_homes(peer: Gpg, gpg_world: GpgWorld) -> None:
    alice, carol = gpg_world["alice"], gpg_world["carol"]
    msg = gpg_world.home.sign_encrypt(MSG, recipients=[carol.fpr], signers=[alice.fpr])
    res = peer.decrypt_verify(msg)
    assert res.ok and res.plaintext == MSG
    assert res.goodsig_fprs == {alice.fpr}
    assert res.hash_names == {"SHA384"} and res.cipher_name == "AES256"
    assert (res.mdc_method, res.aead_algo) == (2, 0)
    assert carol.encryption_fpr is not None
    assert res.enc_to == (carol.encryption_fpr[-16:],)
    assert res.decryption_key == (carol.encryption_fpr, carol.fpr)
    assert res.plaintext_format == "b"
    assert packet_tags(gpg_world.home.list_packets(msg)) == [1, 18, 4, 11, 2]

    back = peer.sign_encrypt(MSG, recipients=[alice.fpr], signers=[carol.fpr])
    res = gpg_world.home.decrypt_verify(back)
    assert res.ok and res.plaintext == MSG and res.goodsig_fprs == {carol.fpr}


def test_two_signers_two_recipients(peer: Gpg, gpg_world: GpgWorld) -> None:
    alice, carol, sam = gpg_world["alice"], gpg_world["carol"], gpg_world["sam"]
    msg = gpg_world.home.sign_encrypt(
        MSG, recipients=[alice.fpr, carol.fpr], signers=[alice.fpr, sam.fpr]
    )
    dump = gpg_world.home.list_packets(msg)
    assert packet_tags(dump) == [1, 1, 18, 4, 4, 11, 2, 2]
    # gpg marks only the last one-pass packet as "last=1" (nested flag)
    assert [line.split("last=")[1] for line in dump.splitlines() if "last=" in line] == ["0", "1"]
    # gpg writes the one-pass packets in reverse `-u` order, the signatures mirrored after them
    onepass = re.findall(r":onepass_sig packet: keyid ([0-9A-F]{16})", dump)
    sigs = re.findall(r":signature packet: algo 1, keyid ([0-9A-F]{16})", dump)
    assert onepass == [sam.signing_fpr[-16:], alice.fpr[-16:]]
    assert sigs == onepass[::-1]

    for home in (gpg_world.home, peer):  # either recipient can open it
        res = home.decrypt_verify(msg)
        assert res.ok and res.plaintext == MSG
        assert len(res.good_signatures) == 2
        assert res.goodsig_fprs == {alice.fpr, sam.fpr, sam.signing_fpr}
        by_primary = {s.primary_fpr: s for s in res.good_signatures}
        assert by_primary[sam.fpr].signing_fpr == sam.signing_fpr != sam.fpr
        assert all(s.hash_algo == 9 and s.pk_algo == 1 for s in res.good_signatures)
        assert len(res.enc_to) == 2


def test_armored_output(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(MSG, recipients=[alice.fpr], signers=[alice.fpr], armor=True)
    assert msg.startswith(b"-----BEGIN PGP MESSAGE-----\n")
    assert msg.rstrip().endswith(b"-----END PGP MESSAGE-----")
    assert gpg_world.home.decrypt_verify(msg).plaintext == MSG


@pytest.mark.parametrize(
    ("compress", "algo"), [("none", None), ("zip", 1), ("zlib", 2), ("bzip2", 3)]
)
def test_compression(gpg_world: GpgWorld, compress: str, algo: int | None) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(
        MSG,
        recipients=[alice.fpr],
        signers=[alice.fpr],
        compress=compress,  # type: ignore[arg-type,unused-ignore]
    )
    dump = gpg_world.home.list_packets(msg)
    if algo is None:
        assert 8 not in packet_tags(dump)
    else:
        assert packet_tags(dump)[:3] == [1, 18, 8]
        assert f":compressed packet: algo={algo}" in dump
    assert gpg_world.home.decrypt_verify(msg).plaintext == MSG


@pytest.mark.parametrize(
    ("digest", "cipher", "cipher_id"),
    [("SHA384", "AES256", 9), ("SHA1", "CAST5", 3), ("SHA256", "3DES", 2), ("SHA512", "AES128", 7)],
)
def test_weak_and_strong_algorithms_are_reported(
    gpg_world: GpgWorld, digest: str, cipher: str, cipher_id: int
) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(
        MSG, recipients=[alice.fpr], signers=[alice.fpr], digest=digest, cipher=cipher
    )
    res = gpg_world.home.decrypt_verify(msg)
    assert res.returncode == 0  # gpg accepts SHA-1 and CAST5: the exit code is no verdict
    assert res.hash_names == {digest}
    assert (res.cipher_name, res.cipher_algo) == (cipher, cipher_id)
    assert res.ok and res.plaintext == MSG
    assert f"digest algo {res.good_signatures[0].hash_algo}," in gpg_world.home.list_packets(msg)


def test_wildcard_key_ids(peer: Gpg, gpg_world: GpgWorld) -> None:
    alice, carol = gpg_world["alice"], gpg_world["carol"]
    msg = gpg_world.home.sign_encrypt(
        MSG, recipients=[carol.fpr, alice.fpr], signers=[alice.fpr], throw_keyids=True
    )
    assert gpg_world.home.list_packets(msg).count("keyid 0000000000000000") == 2
    res = peer.decrypt_verify(msg)  # peer tries its only secret key against both
    assert res.enc_to == ("0000000000000000", "0000000000000000")
    assert res.ok and res.plaintext == MSG
    assert res.decryption_key == (carol.encryption_fpr, carol.fpr)


def test_textmode(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    text = b"line one\nline two  \n"
    msg = gpg_world.home.sign_encrypt(
        text, recipients=[alice.fpr], signers=[alice.fpr], textmode=True
    )
    res = gpg_world.home.decrypt_verify(msg)
    assert res.plaintext_format == "t"
    assert res.good_signatures[0].sig_class == 0x01
    assert res.plaintext == text
    assert "sigclass 0x01" in gpg_world.home.list_packets(msg)


def test_sed_without_mdc(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(MSG, recipients=[alice.fpr], signers=[alice.fpr], mdc=False)
    dump = gpg_world.home.list_packets(msg)
    assert packet_tags(dump)[:2] == [1, 9]  # tag 9: Symmetrically Encrypted Data
    assert "mdc_method" not in dump
    res = gpg_world.home.decrypt_verify(msg, check=False)
    assert res.returncode == 2 and res.decryption_failed and not res.ok
    assert res.mdc_method == 0 and not res.goodmdc
    assert res.plaintext == MSG  # gpg wrote it before failing: never trust stdout alone
    with pytest.raises(GpgError):
        gpg_world.home.decrypt_verify(msg)
    forced = gpg_world.home.decrypt_verify(msg, ignore_mdc_error=True)
    assert forced.decryption_okay and forced.mdc_method == 0 and not forced.ok


def test_disable_mdc_alone_is_ignored_by_gpg_22(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.encrypt_only(MSG, recipients=[alice.fpr], extra_args=["--disable-mdc"])
    assert packet_tags(gpg_world.home.list_packets(msg))[:2] == [1, 18]


def test_encrypt_only_and_sign_only(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    enc = gpg_world.home.encrypt_only(MSG, recipients=[alice.fpr])
    res = gpg_world.home.decrypt_verify(enc)
    assert res.ok and res.plaintext == MSG and res.signatures == ()
    assert packet_tags(gpg_world.home.list_packets(enc)) == [1, 18, 11]

    signed = gpg_world.home.sign_only(MSG, signers=[alice.fpr])
    assert packet_tags(gpg_world.home.list_packets(signed)) == [4, 11, 2]
    res = gpg_world.home.decrypt_verify(signed)
    assert res.ok and not res.encrypted and res.plaintext == MSG
    assert res.goodsig_fprs == {alice.fpr} and res.hash_names == {"SHA384"}


def test_detached_signature_good_and_bad(gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    sig = gpg_world.home.sign_only(MSG, signers=[alice.fpr], detached=True)
    assert packet_tags(gpg_world.home.list_packets(sig)) == [2]
    assert gpg_world.home.verify_detached(sig, MSG).goodsig_fprs == {alice.fpr}
    bad = gpg_world.home.verify_detached(sig, MSG + b" ", check=False)
    assert bad.returncode == 1 and len(bad.badsig) == 1 and bad.goodsig_fprs == frozenset()


def test_protected_signer_and_recipient(gpg_world: GpgWorld) -> None:
    dave, alice = gpg_world["dave"], gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(
        MSG, recipients=[dave.fpr], signers=[dave.fpr, alice.fpr], passphrase=DAVE_PASSPHRASE
    )
    locked = gpg_world.home.decrypt_verify(msg, check=False)
    assert locked.returncode != 0 and not locked.decryption_okay and locked.plaintext == b""
    res = gpg_world.home.decrypt_verify(msg, passphrase=DAVE_PASSPHRASE)
    assert res.ok and res.goodsig_fprs == {dave.fpr, alice.fpr}


# --- verdicts that gpg reports with exit code 0 ------------------------------------------------


def test_expired_signer(gpg_world: GpgWorld) -> None:
    msg = gpg_world.messages["msg_from_ed_to_alice"]
    ed = gpg_world["ed"]
    res = gpg_world.home.decrypt_verify(msg)
    assert res.returncode == 0 and res.plaintext == gpg_world.GOPC
    assert res.goodsig_fprs == frozenset()
    (sig,) = res.expkeysig
    assert sig.primary_fpr == ed.fpr and sig.created == gpg_world.base + 3600
    # at the signing time (faked), the same message verifies as good
    then = gpg_world.home.decrypt_verify(msg, at=gpg_world.base + 3600)
    assert then.goodsig_fprs == {ed.fpr}
    with pytest.raises(GpgError):  # gpg refuses to sign with it now
        gpg_world.home.sign_only(MSG, signers=[ed.fpr])


def test_revoked_signer(gpg_world: GpgWorld) -> None:
    res = gpg_world.home.decrypt_verify(gpg_world.messages["msg_from_rex_to_alice"])
    assert res.returncode == 0 and res.plaintext == gpg_world.GOPC
    assert res.goodsig_fprs == frozenset() and res.expkeysig == ()
    (sig,) = res.revkeysig
    assert sig.primary_fpr == gpg_world["rex"].fpr and sig.hash_name == "SHA384"
    with pytest.raises(GpgError):
        gpg_world.home.encrypt_only(MSG, recipients=[gpg_world["rex"].fpr])


def test_expired_encryption_subkey(gpg_world: GpgWorld) -> None:
    erin = gpg_world["erin"]
    with pytest.raises(GpgError, match=r"[Uu]nusable public key"):
        gpg_world.home.encrypt_only(MSG, recipients=[erin.fpr])
    # gpg still decrypts what was encrypted to the subkey while it was valid
    res = gpg_world.home.decrypt_verify(gpg_world.messages["msg_to_erin"])
    assert res.ok and res.decryption_key == (erin.encryption_fpr, erin.fpr)
    assert res.goodsig_fprs == {gpg_world["alice"].fpr}


def test_future_dated_signature_is_goodsig_in_gpg(gpg_world: GpgWorld) -> None:
    """gpg 2.2.40 only refuses keys from the future, not signatures: clock skew is our job."""
    alice = gpg_world["alice"]
    later = gpg_world.base + 10 * DAY  # eight days from now
    signed = gpg_world.home.sign_only(MSG, signers=[alice.fpr], at=later)
    res = gpg_world.home.decrypt_verify(signed)
    assert res.goodsig_fprs == {alice.fpr}
    assert res.good_signatures[0].created == later


def test_key_from_the_future_is_errsig(gpg: Gpg) -> None:
    later = 4_000_000_000  # 2096
    fpr = gpg.gen_key("Future <f@example.com>", algo="rsa2048", subkey=False, at=later)
    signed = gpg.sign_only(MSG, signers=[fpr], at=later)
    assert gpg.decrypt_verify(signed, at=later).goodsig_fprs == {fpr}
    res = gpg.decrypt_verify(signed, check=False)
    assert res.goodsig_fprs == frozenset() and [s.status for s in res.signatures] == ["ERRSIG"]


def test_unknown_signer_is_errsig_missing_key(gpg: Gpg, gpg_world: GpgWorld) -> None:
    gpg_world.import_secret(gpg, "carol")  # carol only: alice's public key is unknown here
    carol, alice = gpg_world["carol"], gpg_world["alice"]
    msg = gpg_world.home.sign_encrypt(MSG, recipients=[carol.fpr], signers=[alice.fpr])
    res = gpg.decrypt_verify(msg, check=False)
    assert res.decryption_okay and res.goodmdc and res.plaintext == MSG
    (sig,) = res.errsig
    assert sig.errsig_reason == "missing public key" and sig.hash_name == "SHA384"
    assert sig.keyid == alice.fpr[-16:]


def test_no_secret_key(gpg: Gpg, gpg_world: GpgWorld) -> None:
    alice = gpg_world["alice"]
    msg = gpg_world.home.encrypt_only(MSG, recipients=[alice.fpr])
    res = gpg.decrypt_verify(msg, check=False)
    assert alice.encryption_fpr is not None
    assert res.no_seckey == (alice.encryption_fpr[-16:],)
    assert res.decryption_failed and not res.ok and res.plaintext == b""
    with pytest.raises(GpgError) as err:
        gpg.decrypt_verify(msg)
    assert any(s.keyword == "NO_SECKEY" for s in err.value.status)


def test_garbage_is_nodata(gpg: Gpg) -> None:
    res = gpg.decrypt_verify(b"not an openpgp message", check=False)
    assert res.returncode == 2 and res.nodata and not res.ok


# --- parsing without gpg -----------------------------------------------------------------------

_STATUS = b"""\
[GNUPG:] ENC_TO 0000000000000000 1 0
[GNUPG:] DECRYPTION_KEY AAAA1111 BBBB2222 u
[GNUPG:] BEGIN_DECRYPTION
[GNUPG:] DECRYPTION_INFO 2 9 0
[GNUPG:] PLAINTEXT 74 1795942418 m
[GNUPG:] NEWSIG
[GNUPG:] GOODSIG 1111111111111111 A
[GNUPG:] VALIDSIG SUBFPR 2026-11-29 1795942418 0 4 0 1 9 01 PRIMFPR
[GNUPG:] NEWSIG
[GNUPG:] ERRSIG 2222222222222222 1 2 00 1795942418 9 -
[GNUPG:] NEWSIG
[GNUPG:] EXPKEYSIG 3333333333333333 C
[GNUPG:] VALIDSIG FPR3 2026-11-29 1795942418 0 4 0 1 10 00 FPR3
[GNUPG:] DECRYPTION_OKAY
[GNUPG:] GOODMDC
[GNUPG:] END_DECRYPTION
"""


def test_status_parsing() -> None:
    status = StatusLine.parse_all(_STATUS)
    res = DecryptResult(b"x", 0, status, "", _parse_signatures(status))
    assert res.ok and res.enc_to == ("0000000000000000",)
    assert res.decryption_key == ("AAAA1111", "BBBB2222")
    assert (res.mdc_method, res.cipher_name, res.plaintext_format) == (2, "AES256", "t")
    assert [s.status for s in res.signatures] == ["GOODSIG", "ERRSIG", "EXPKEYSIG"]
    assert res.goodsig_fprs == {"SUBFPR", "PRIMFPR"}
    assert res.good_signatures[0].sig_class == 1
    assert res.errsig[0].errsig_reason == "missing public key"
    assert res.hash_names == {"SHA384", "SHA1", "SHA512"}
    without_mdc = StatusLine.parse_all(_STATUS.replace(b"[GNUPG:] GOODMDC\n", b""))
    assert not DecryptResult(b"x", 0, without_mdc, "").ok
