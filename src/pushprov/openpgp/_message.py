"""Sealing (sign, then encrypt) and opening (decrypt, check MDC, verify) OpenPGP messages.

Sealing writes: PKESK v3 per recipient, then SEIPD v1 holding one-pass signatures, the literal
data and the signatures in reverse order (RFC 9580 §10.3). Opening releases plaintext only after
decryption, the MDC, at least one trusted signature and every policy check passed; every way the
decryption itself can fail raises the same ``DecryptionFailedError``.
"""

from __future__ import annotations

import bz2
import dataclasses
import datetime as _dt
import hashlib
import hmac
import os
import zlib
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher

from .._clock import as_unix, from_unix
from .._encoding import Encoding, b64decode_any, b64encode
from .._errors import (
    DecryptionFailedError,
    InputTooLargeError,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
    UnsupportedError,
    UsageError,
)
from .._opened import Opened, VerifiedSignature
from .._policy import GOOGLE_PROFILE, OPENPGP_CIPHERS, Policy
from ._algorithms import (
    CFB,
    CIPHER_IDS,
    CIPHERS,
    HASH_IDS,
    PK_RSA,
    RSA_ALGOS,
    CipherSpec,
    cipher_spec,
    hash_name,
    new_hash,
    require_runnable,
)
from ._cert import Certificate, ComponentKey
from ._packets import (
    FramingError,
    Tag,
    armor,
    checksum16,
    dearmor,
    encode_packet,
    is_armored,
    mpi,
    read_mpi,
)
from ._packets import read_packets as _read_packets
from ._rsa import PrivateKeyOps, encrypt_block, modulus_octets, verify_digest
from ._secret import SecretKey
from ._signature import (
    Signature,
    SigType,
    UnsupportedSignatureError,
    make_signature,
    parse_signature,
)

__all__ = ["decode_message", "encode_message", "message_recipients", "open_message", "seal"]

_MDC_HEADER = b"\xd3\x14"
_MAX_NESTING = 3
_KNOWN_ARMOR = frozenset({"PUBLIC KEY BLOCK", "PRIVATE KEY BLOCK", "SIGNATURE", "SIGNED MESSAGE"})
#: For tools that look inside a message (tests, diagnostics): Google's budgets, every cipher.
_INSPECTION = dataclasses.replace(GOOGLE_PROFILE, ciphers=OPENPGP_CIPHERS)


# ---------------------------------------------------------------------------------------------
# Sealing


def seal(
    plaintext: bytes,
    *,
    sign_with: Sequence[SecretKey],
    encrypt_to: Sequence[Certificate],
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
    text: bool = False,
) -> bytes:
    """Sign with every key in ``sign_with``, encrypt to every certificate; return binary OpenPGP.

    ``text`` marks the data as UTF-8 text and signs it as such (SOP's ``encrypt --as=text``).
    """
    if not sign_with:
        raise UsageError("at least one signing key is required")
    if not encrypt_to:
        raise UsageError("at least one recipient is required")
    if len(plaintext) > policy.max_plaintext_bytes:
        raise InputTooLargeError("plaintext is larger than the policy allows")
    now = as_unix(at)
    hash_algo = HASH_IDS[policy.signing_hash]
    cipher_algo = CIPHER_IDS[policy.cipher]
    spec = CIPHERS[cipher_algo]  # Policy admits only ciphers listed there
    require_runnable(spec)

    # One signature and one PKESK per key, however often a key is named (first one kept).
    signers: dict[bytes, tuple[ComponentKey, PrivateKeyOps]] = {}
    for secret in sign_with:
        key, backend = secret.signer(policy, at)
        signers.setdefault(key.fingerprint, (key, backend))
    recipients: dict[bytes, ComponentKey] = {}
    for cert in encrypt_to:
        key = cert.encryption_key(policy, at)
        recipients.setdefault(key.fingerprint, key)

    inner = signed_literal(
        plaintext, list(signers.values()), created=now, hash_algo=hash_algo, text=text
    )

    session_key = os.urandom(spec.key_size)
    checksum = checksum16(session_key)
    block = bytes([cipher_algo]) + session_key + checksum
    out = []
    for key in recipients.values():
        assert key.public is not None
        encrypted = encrypt_block(key.public, block)
        out.append(
            encode_packet(Tag.PKESK, b"\x03" + key.key_id + bytes([PK_RSA]) + mpi(encrypted))
        )
    prefix = os.urandom(spec.block_size)
    clear = prefix + prefix[-2:] + inner + _MDC_HEADER
    clear += hashlib.sha1(clear).digest()  # noqa: S324 - the MDC is SHA-1 by definition
    encryptor = Cipher(spec.factory(session_key), CFB(bytes(spec.block_size))).encryptor()
    out.append(encode_packet(Tag.SEIPD, b"\x01" + encryptor.update(clear) + encryptor.finalize()))
    return b"".join(out)


def signed_literal(
    plaintext: bytes,
    signers: Sequence[tuple[ComponentKey, PrivateKeyOps]],
    *,
    created: int,
    hash_algo: int,
    text: bool = False,
) -> bytes:
    """One-pass signatures, the literal data, then the signatures in reverse order (§10.3).

    ``text`` writes a UTF-8 literal ('u') and text signatures (type 0x01) over the data with
    CRLF line endings (§5.2.1.2); otherwise a binary literal and binary signatures.
    """
    sig_type = SigType.TEXT if text else SigType.BINARY
    # Hash the document once; each signer continues from a copy with its own trailer.
    document_hash = new_hash(hash_algo)
    document_hash.update(canonical_text(plaintext) if text else plaintext)
    one_pass: list[bytes] = []
    signatures: list[bytes] = []
    last = len(signers) - 1
    for index, (key, backend) in enumerate(signers):
        one_pass.append(
            encode_packet(
                Tag.ONE_PASS_SIGNATURE,
                bytes([3, sig_type, hash_algo, PK_RSA])
                + key.key_id
                + (b"\x01" if index == last else b"\x00"),
            )
        )
        body = make_signature(
            backend,
            fingerprint=key.fingerprint,
            sig_type=sig_type,
            hash_algo=hash_algo,
            data_hash=document_hash.copy(),
            created=created,
        )
        signatures.append(encode_packet(Tag.SIGNATURE, body))
    header = (b"u" if text else b"b") + b"\x00" + created.to_bytes(4, "big")
    literal = encode_packet(Tag.LITERAL, header + plaintext)
    return b"".join(one_pass) + literal + b"".join(reversed(signatures))


def canonical_text(data: bytes) -> bytes:
    """Line endings as CRLF, as text signatures hash them (RFC 9580 §5.2.1.2)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def encode_message(binary: bytes, encoding: Encoding) -> bytes:
    if encoding is Encoding.BINARY:
        return binary
    if encoding is Encoding.ARMOR:
        return armor("MESSAGE", binary).encode("ascii")
    return b64encode(binary, encoding)


def decode_message(data: bytes, policy: Policy = GOOGLE_PROFILE) -> bytes:
    """Binary OpenPGP from armor, raw binary, or base64 in either alphabet."""
    if len(data) > policy.max_message_bytes:
        raise InputTooLargeError("message is larger than the policy allows")
    if not data.strip():
        raise MalformedInputError("empty input")
    if data[0] & 0x80:
        return data
    if data.lstrip().startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        raise PolicyViolationError("a cleartext-signed message is not encrypted")
    if is_armored(data):
        try:
            kind, binary = dearmor(data)
        except FramingError:
            raise MalformedInputError("bad ASCII armor") from None
        if kind != "MESSAGE":
            # Name only kinds we know: the label is input, and could be anything.
            shown = kind if kind in _KNOWN_ARMOR else "another kind of block"
            raise MalformedInputError(f"expected an armored MESSAGE, got {shown}")
        return binary
    return b64decode_any(data)


def message_recipients(message: bytes, *, policy: Policy = GOOGLE_PROFILE) -> tuple[str, ...]:
    """The key IDs (hex) a message is encrypted to, in order, from its envelope as
    ``open_message`` reads it; ``0000000000000000`` stands for a hidden recipient.

    Nothing is decrypted. Raises what ``open_message`` raises for a malformed envelope.
    """
    pkesks, _seipd = _split_envelope(decode_message(message, policy), policy)
    if any(len(body) < 9 for body in pkesks):
        raise DecryptionFailedError  # truncated, as _split_envelope treats truncation
    return tuple(body[1:9].hex().upper() for body in pkesks)


# ---------------------------------------------------------------------------------------------
# Opening


def open_message(
    message: bytes,
    *,
    decrypt_with: Sequence[SecretKey],
    verify_with: Sequence[Certificate],
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
) -> Opened:
    """Decrypt with any of ``decrypt_with``; require a valid signature by one of ``verify_with``."""
    binary = decode_message(message, policy)
    pkesks, seipd = _split_envelope(binary, policy)
    decrypted = _decrypt(pkesks, seipd, decrypt_with, policy)
    if decrypted is None:
        raise DecryptionFailedError
    decryption_key, spec, inner = decrypted
    try:
        literal, signatures = _parse_signed_literal(inner, policy)
    except FramingError:
        raise DecryptionFailedError from None
    verified = _verify(literal, signatures, verify_with, policy, at)
    return Opened(
        plaintext=literal.data,
        format="pgp",
        decryption_key=decryption_key.fingerprint.hex().upper(),
        cipher=spec.name,
        signatures=verified,
    )


#: Packets that end the envelope at once, and how; any other tag outside it is not OpenPGP.
_REFUSED_PACKETS: dict[int, tuple[type[Exception], str]] = {
    Tag.SED: (PolicyViolationError, "encrypted data without integrity protection (no MDC)"),
    Tag.AEAD: (UnsupportedError, "AEAD encrypted data packets are not supported"),
    **{
        tag: (PolicyViolationError, "the message is not encrypted")
        for tag in (Tag.LITERAL, Tag.ONE_PASS_SIGNATURE, Tag.SIGNATURE, Tag.COMPRESSED)
    },
}


def _split_envelope(binary: bytes, policy: Policy = GOOGLE_PROFILE) -> tuple[list[bytes], bytes]:
    pkesks: list[bytes] = []
    seipd: bytes | None = None
    password_encrypted = False
    if not binary or not binary[0] & 0x80:
        raise MalformedInputError("not an OpenPGP message")
    try:
        for tag, body in _read_packets(binary):
            if tag == Tag.PKESK:
                _check_pkesk(body, seipd is not None, len(pkesks), policy)
                pkesks.append(body)
            elif tag == Tag.SKESK:
                password_encrypted = True
            elif tag == Tag.SEIPD:
                _check_seipd(body, seipd is not None)
                seipd = body
            elif tag not in (Tag.MARKER, Tag.PADDING):
                error, message = _REFUSED_PACKETS.get(
                    tag, (MalformedInputError, "not an OpenPGP message")
                )
                raise error(message)
    except FramingError:
        # Truncation counts as a decryption failure: one outward error for all of them.
        raise DecryptionFailedError from None
    if not pkesks and password_encrypted:
        raise UnsupportedError("password-encrypted messages are not supported")
    if seipd is None or not pkesks:
        raise DecryptionFailedError
    return pkesks, seipd


def _check_pkesk(body: bytes, after_seipd: bool, seen: int, policy: Policy) -> None:
    """A v3 PKESK before the encrypted data, within the policy's count of recipients."""
    if after_seipd or not body:
        raise FramingError("PKESK after encrypted data")
    if body[0] == 6:
        raise UnsupportedError("v6 PKESK (RFC 9580 v6 keys) is not supported")
    if body[0] != 3:
        raise FramingError("unknown PKESK version")
    if seen == policy.max_pkesks:
        # Public structure, refused before any RSA work: no oracle in saying so.
        raise PolicyViolationError(
            f"the message is encrypted to more than {policy.max_pkesks} keys,"
            " more than the policy allows"
        )


def _check_seipd(body: bytes, after_seipd: bool) -> None:
    """The one SEIPD packet, version 1 (MDC)."""
    if after_seipd or not body:
        raise FramingError("more than one encrypted data packet")
    if body[0] == 2:
        raise UnsupportedError("SEIPD v2 (AEAD) is not supported")
    if body[0] != 1:
        raise FramingError("unknown SEIPD version")


def _decrypt(
    pkesks: list[bytes],
    seipd: bytes,
    decrypt_with: Sequence[SecretKey],
    policy: Policy = _INSPECTION,
) -> tuple[ComponentKey, CipherSpec, bytes] | None:
    """The key, cipher and inner packets of the first trial that passes the MDC, else None.

    Every trial does the same work whatever happens in it: one RSA operation, then exactly one
    SEIPD decryption, under the session key when the block is well-formed and names a cipher of
    ``policy.ciphers``, else under a random key for ``policy.cipher`` that fails at the MDC. So a
    bad padding, a wrong checksum, a wrong key and a cipher outside the policy cost the same and
    end the same (Bleichenbacher, Marvin); a refused cipher is never run, and never named.
    """
    for name in policy.ciphers:
        require_runnable(CIPHERS[CIPHER_IDS[name]])  # refused before any RSA work
    filler = CIPHERS[CIPHER_IDS[policy.cipher]]
    tried: set[tuple[str, bytes]] = set()
    for body, key, backend in _trials(pkesks, decrypt_with, policy):
        session = _decrypt_session_key(backend, body[10:], policy.ciphers)
        spec, session_key = session or (filler, os.urandom(filler.key_size))
        if (spec.name, session_key) in tried:
            # The same session key again (only its maker can repeat one): its SEIPD already failed.
            continue
        tried.add((spec.name, session_key))
        inner = _decrypt_seipd(seipd, spec, session_key)
        if inner is not None and session is not None:
            return key, spec, inner
    return None


def _trials(
    pkesks: list[bytes], decrypt_with: Sequence[SecretKey], policy: Policy
) -> list[tuple[bytes, ComponentKey, PrivateKeyOps]]:
    """The (PKESK, key) pairs worth an RSA operation, each once; refused, before any RSA work,
    when there are more than the policy's budget.

    A PKESK naming one of our keys is tried with that key, and only the first PKESK naming it;
    an all-zero key ID hides the recipient, so that PKESK is tried with each of our keys.
    """
    ours: dict[bytes, tuple[ComponentKey, PrivateKeyOps]] = {}
    for secret in decrypt_with:
        for key, backend in secret.decryptors():
            ours.setdefault(key.fingerprint, (key, backend))
    trials: list[tuple[bytes, ComponentKey, PrivateKeyOps]] = []
    seen: set[tuple[bytes, bytes]] = set()
    named: set[bytes] = set()
    for body in pkesks:
        if len(body) < 10 or body[9] not in RSA_ALGOS:
            continue
        key_id = body[1:9]
        wildcard = key_id == bytes(8)
        for key, backend in ours.values():
            if (body, key.fingerprint) in seen:
                continue
            if not wildcard:
                if key.key_id != key_id or key.fingerprint in named:
                    continue
                named.add(key.fingerprint)
            seen.add((body, key.fingerprint))
            trials.append((body, key, backend))
    if len(trials) > policy.max_rsa_private_ops:
        raise PolicyViolationError(
            f"opening the message takes {len(trials)} private-key operations,"
            f" more than the policy's {policy.max_rsa_private_ops}"
        )
    return trials


def _decrypt_session_key(
    backend: PrivateKeyOps, data: bytes, ciphers: frozenset[str]
) -> tuple[CipherSpec, bytes] | None:
    """RSA-decrypt a PKESK body; any problem, a cipher outside ``ciphers`` included, is the same
    ``None`` (RFC 9580 §13.5)."""
    block = rsa_decrypt_mpi(backend, data)
    if block is None:
        return None
    spec = cipher_spec(block[0]) if block else None
    if spec is None or spec.name not in ciphers or len(block) != spec.key_size + 3:
        return None
    session_key = block[1:-2]
    if not hmac.compare_digest(checksum16(session_key), block[-2:]):
        return None
    return spec, session_key


def rsa_decrypt_mpi(backend: PrivateKeyOps, data: bytes) -> bytes | None:
    """The RSA step of a PKESK: one MPI, left-padded to the modulus length, then decrypted.

    ``None`` for every failure. (pyca raises on bad padding; a backend with implicit rejection
    returns unrelated bytes instead, which the session-key checks refuse the same way.)
    """
    try:
        value, end = read_mpi(data, 0)
    except FramingError:
        return None
    size = modulus_octets(backend.public_key)
    if end != len(data) or len(value) > size:
        return None
    try:
        return backend.decrypt_block(value.rjust(size, b"\0"))
    except ValueError:
        return None


def _decrypt_seipd(body: bytes, spec: CipherSpec, session_key: bytes) -> bytes | None:
    """Decrypt SEIPD v1; return the inner packets only when the MDC matches."""
    ciphertext = body[1:]
    block_size = spec.block_size
    if len(ciphertext) < block_size + 2 + 22:
        return None
    decryptor = Cipher(spec.factory(session_key), CFB(bytes(block_size))).decryptor()
    clear = decryptor.update(ciphertext) + decryptor.finalize()
    # The two "quick check" octets are deliberately not consulted (§13.4): only the MDC decides.
    expected = _MDC_HEADER + hashlib.sha1(clear[:-20]).digest()  # noqa: S324
    if not hmac.compare_digest(clear[-22:], expected):
        return None
    return clear[block_size + 2 : -22]


class _Literal:
    __slots__ = ("data",)

    def __init__(self, body: bytes) -> None:
        if len(body) < 6:
            raise FramingError("truncated literal data")
        name_length = body[1]
        start = 2 + name_length + 4
        if len(body) < start:
            raise FramingError("truncated literal data")
        self.data = body[start:]


def _parse_signed_literal(inner: bytes, policy: Policy) -> tuple[_Literal, list[Signature]]:
    """Check the signed-message grammar; return the literal and its readable signatures."""
    packets = _flatten(inner, policy, 0, [0])
    leading: list[bytes] = []
    one_pass: list[bytes] = []
    trailing: list[bytes] = []
    literal: _Literal | None = None
    for tag, body in packets:
        if tag == Tag.SIGNATURE and literal is None and not one_pass:
            leading.append(body)
        elif tag == Tag.ONE_PASS_SIGNATURE and literal is None:
            one_pass.append(body)
        elif tag == Tag.LITERAL and literal is None:
            literal = _Literal(body)
        elif tag == Tag.SIGNATURE and literal is not None:
            trailing.append(body)
        else:
            raise FramingError("unexpected packet in the signed message")
    if literal is None or len(trailing) != len(one_pass):
        raise FramingError("one-pass signatures and signatures do not pair")
    _check_signature_count(len(leading) + len(trailing), policy)
    signatures = [sig for sig in map(_readable_signature, leading) if sig is not None]
    # The signature after the literal closes the innermost (last written) one-pass packet.
    for ops, body in zip(reversed(one_pass), trailing, strict=True):
        sig = _readable_signature(body)
        _check_pairing(ops, sig)
        if sig is not None:
            signatures.append(sig)
    return literal, signatures


def _readable_signature(body: bytes) -> Signature | None:
    """A v4 signature, or None for one we cannot read (v3, v6): the verifier ignores those."""
    try:
        return parse_signature(body)
    except UnsupportedSignatureError:
        return None


def _check_pairing(ops: bytes, sig: Signature | None) -> None:
    """GnuPG checks this pairing too: same type, algorithms and issuer as the one-pass packet."""
    if len(ops) != 13 or ops[0] != 3:
        raise FramingError("bad one-pass signature packet")
    if sig is None:
        return
    if ops[1:4] != bytes([sig.sig_type, sig.hash_algo, sig.pk_algo]):
        raise FramingError("one-pass signature does not match its signature")
    issuers = set(sig.issuer_key_ids) | {fpr[-8:] for fpr in sig.issuer_fingerprints}
    if ops[4:12] not in issuers:
        raise FramingError("one-pass signature names another issuer than its signature")


def _flatten(
    data: bytes, policy: Policy, depth: int, inflated: list[int]
) -> list[tuple[int, bytes]]:
    packets: list[tuple[int, bytes]] = []
    for tag, body in _read_packets(data):
        if tag == Tag.COMPRESSED:
            if depth >= _MAX_NESTING:
                raise FramingError("compressed packets nested too deeply")
            content = _inflate(body, policy.max_plaintext_bytes - inflated[0])
            inflated[0] += len(content)
            packets += _flatten(content, policy, depth + 1, inflated)
        elif tag not in (Tag.MARKER, Tag.PADDING):
            packets.append((tag, body))
    return packets


def _inflate(body: bytes, cap: int) -> bytes:
    """Decompress with a hard output cap, never inflating first and measuring after."""
    if not body:
        raise FramingError("empty compressed packet")
    algorithm, data = body[0], body[1:]
    if algorithm == 0:
        content = data
    elif algorithm in (1, 2):
        inflater = zlib.decompressobj(-15 if algorithm == 1 else 15)
        try:
            content = inflater.decompress(data, cap + 1)
        except zlib.error:
            raise FramingError("bad compressed data") from None
        if len(content) <= cap and (not inflater.eof or inflater.unused_data):
            # A stream must end where the packet ends: ZLIB's Adler-32 is checked only then.
            raise FramingError("truncated or padded compressed data")
    elif algorithm == 3:
        decompressor = bz2.BZ2Decompressor()
        try:
            content = decompressor.decompress(data, max_length=cap + 1)
        except (OSError, ValueError, EOFError):
            raise FramingError("bad compressed data") from None
        if len(content) <= cap and (not decompressor.eof or decompressor.unused_data):
            raise FramingError("truncated or padded compressed data")
    else:
        raise FramingError("unknown compression algorithm")
    if len(content) > cap:
        raise InputTooLargeError("decompressed message is larger than the policy allows")
    return content


# ---------------------------------------------------------------------------------------------
# Signature verification

_OK = 0
_UNKNOWN = 1  # no trusted key made it: ignored
_BAD = 2
_FUTURE = 3
_KEY_UNUSABLE = 4
_POLICY = 5


def _verify(
    literal: _Literal,
    signatures: list[Signature],
    verify_with: Sequence[Certificate],
    policy: Policy,
    at: _dt.datetime,
) -> tuple[VerifiedSignature, ...]:
    if not signatures:
        raise SignatureInvalidError("the message is not signed")
    _check_signature_count(len(signatures), policy)
    plan = _candidates(signatures, verify_with)
    checks = sum(len(candidates) for _sig, candidates in plan)
    if checks > policy.max_signature_verifications:
        # Decided from the issuer subpackets, before any hashing or RSA work.
        raise PolicyViolationError(
            f"the signatures name {checks} trusted keys to check,"
            f" more than the policy's {policy.max_signature_verifications}"
        )
    now = as_unix(at)
    digests: dict[tuple[int, int], hashes.Hash] = {}
    verified: list[VerifiedSignature] = []
    worst = (_UNKNOWN, "no signature by a trusted key")
    for sig, candidates in plan:
        for cert, key in candidates:
            verdict, reason = _check(sig, cert, key, literal, policy, now, digests)
            if verdict == _OK:
                verified.append(
                    VerifiedSignature(
                        certificate=cert.fingerprint,
                        signing_key=key.fingerprint.hex().upper(),
                        hash_algorithm=hash_name(sig.hash_algo),
                        created=from_unix(sig.created or 0),
                    )
                )
                break
            worst = max(worst, (verdict, reason))
    if verified:
        return tuple(verified)
    verdict, reason = worst
    if verdict == _POLICY:
        raise PolicyViolationError(reason)
    raise SignatureInvalidError(reason)


def _check_signature_count(count: int, policy: Policy) -> None:
    if count > policy.max_signatures:
        raise PolicyViolationError(
            f"the message carries {count} signatures,"
            f" more than the policy's {policy.max_signatures}"
        )


def _candidates(
    signatures: list[Signature], verify_with: Sequence[Certificate]
) -> list[tuple[Signature, list[tuple[Certificate, ComponentKey]]]]:
    """Each signature with the trusted keys its issuer subpackets name, each key once however
    often it is named: a fingerprint names one key; key IDs count only without fingerprints."""
    by_fingerprint: dict[bytes, tuple[Certificate, ComponentKey]] = {}
    by_key_id: dict[bytes, dict[bytes, tuple[Certificate, ComponentKey]]] = {}
    for cert in verify_with:
        for key in cert._verifying_keys():
            by_fingerprint.setdefault(key.fingerprint, (cert, key))
            by_key_id.setdefault(key.key_id, {}).setdefault(key.fingerprint, (cert, key))
    plan = []
    for sig in signatures:
        named: dict[bytes, tuple[Certificate, ComponentKey]] = {}
        if sig.issuer_fingerprints:
            for fingerprint in sig.issuer_fingerprints:
                if fingerprint in by_fingerprint:
                    named.setdefault(fingerprint, by_fingerprint[fingerprint])
        else:
            for key_id in sig.issuer_key_ids:
                for fingerprint, pair in by_key_id.get(key_id, {}).items():
                    named.setdefault(fingerprint, pair)
        plan.append((sig, list(named.values())))
    return plan


def _check(
    sig: Signature,
    cert: Certificate,
    key: ComponentKey,
    literal: _Literal,
    policy: Policy,
    now: int,
    digests: dict[tuple[int, int], hashes.Hash],
) -> tuple[int, str]:
    if sig.sig_type not in (SigType.BINARY, SigType.TEXT) or sig.critical_unknown:
        return _BAD, "signature is not a valid document signature"
    name = hash_name(sig.hash_algo)
    if name not in policy.signature_hashes:
        return _POLICY, f"signature hash {name} is not allowed by the policy"
    if sig.pk_algo not in RSA_ALGOS or key.public is None:
        return _POLICY, "signature algorithm is not allowed by the policy"
    if key.bits < policy.min_rsa_bits:
        return _POLICY, f"signer key has {key.bits} bits, below the policy minimum"
    if sig.created is None:
        return _BAD, "signature has no creation time"
    if sig.created > now + int(policy.clock_skew.total_seconds()):
        return _FUTURE, "signature was made in the future"
    if sig.sig_expiration and now >= sig.created + sig.sig_expiration:
        return _KEY_UNUSABLE, "signature is expired"
    for part in (cert._primary, key):
        problem = part.problem_at(now)
        if problem is not None:
            return _KEY_UNUSABLE, f"signer key is {problem}"
    if sig.created < key.created:
        return _BAD, "signature is older than its key"
    hasher = _document_hash(sig.hash_algo, sig.sig_type, literal, digests)
    hasher.update(sig.trailer())
    digest = hasher.finalize()
    if not hmac.compare_digest(digest[:2], sig.left16):
        return _BAD, "signature does not verify"
    if not verify_digest(key.public, sig.hash_algo, digest, sig.value):
        return _BAD, "signature does not verify"
    return _OK, ""


def _document_hash(
    hash_algo: int, sig_type: int, literal: _Literal, cache: dict[tuple[int, int], hashes.Hash]
) -> hashes.Hash:
    cached = cache.get((hash_algo, sig_type))
    if cached is None:
        hasher = new_hash(hash_algo)
        data = literal.data
        if sig_type == SigType.TEXT:
            data = canonical_text(data)
        hasher.update(data)
        cache[(hash_algo, sig_type)] = cached = hasher
    return cached.copy()
