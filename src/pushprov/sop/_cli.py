"""``pushprov-sop``: the Stateless OpenPGP command line (draft-dkg-openpgp-stateless-cli) over
pushprov's OpenPGP profile.

The subset that fits the profile: RSA v4 keys, SHA-384 signatures, AES-256 SEIPD v1. What the
profile refuses answers with the SOP failure that says so (exit codes in ``_errors``). On failure
nothing is written to stdout and stderr gets one line ``pushprov-sop: NAME: message``.

Deliberate departures, each stricter than the draft: ``decrypt`` releases plaintext only with
``--verify-with`` and ``--verifications-out`` and a verified signature (INCOMPLETE_VERIFICATION,
NO_SIGNATURE otherwise); ``encrypt`` needs ``--sign-with`` (MISSING_ARG); passwords
(``--with-password``) and session keys (``--session-key-out``, ``--with-session-key``) are
refused (UNSUPPORTED_OPTION). Key validity is judged at the reference time: ``--not-after`` (or
``--verify-not-after``) when given, else now; ``--not-before`` drops older signatures.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO, NoReturn, TypeVar

import cryptography
from cryptography.hazmat.backends.openssl.backend import backend as _openssl

from .. import __version__, openpgp
from .._clock import now, parse_time
from .._encoding import Encoding
from .._errors import (
    DecryptionFailedError,
    InputTooLargeError,
    KeyInvalidError,
    KeyUnusableError,
    MalformedInputError,
    PassphraseError,
    PolicyViolationError,
    PushprovError,
    SignatureInvalidError,
    UnsupportedError,
    UsageError,
)
from .._opened import VerifiedSignature
from .._policy import GOOGLE_PROFILE
from ._errors import SopError, SopFailure
from ._io import read_capped, read_input, write_output

__all__ = ["SOP_SPEC", "main", "run"]

#: The draft revision whose subcommands, options and exit codes this follows ("~": a subset).
SOP_SPEC = "~draft-dkg-openpgp-stateless-cli-13"

_GENERATE_PROFILES = {
    "default": (3072, "RSA-3072 [CS] primary and [E] subkey, 1 year (Google's profile)"),
    "rfc4880": (3072, "same as default: the RSA keys every RFC 4880 peer reads"),
    "rsa2048": (2048, "RSA-2048 [CS] primary and [E] subkey, 1 year (the profile's minimum)"),
}
_ENCRYPT_PROFILES = {"default": "SEIPD v1 (MDC) with AES-256, SHA-384 signatures, v3 PKESK (RSA)"}

_Handler = Callable[[argparse.Namespace, bytes], bytes]
_T = TypeVar("_T")


class _Parser(argparse.ArgumentParser):
    """argparse that raises SOP's failures instead of exiting with its own status 2."""

    def error(self, message: str) -> NoReturn:
        if "required" in message or "expected one argument" in message:
            raise SopError(SopFailure.MISSING_ARG, message)
        raise SopError(SopFailure.UNSUPPORTED_OPTION, message)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    status, out, err = run(args, sys.stdin.buffer)
    if err:
        sys.stderr.write(err)
    if status == 0:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
    return status


def run(argv: Sequence[str], stdin: BinaryIO) -> tuple[int, bytes, str]:
    """Run one SOP command: (exit status, stdout bytes, stderr text). Never raises."""
    try:
        return 0, _dispatch(list(argv), stdin), ""
    except SopError as error:
        return int(error.failure), b"", f"pushprov-sop: {error}\n"
    except PushprovError as error:
        failure = SopFailure.GENERIC
        return int(failure), b"", f"pushprov-sop: {failure.name}: {error.message}\n"


def _dispatch(argv: list[str], stdin: BinaryIO) -> bytes:
    if not argv:
        raise SopError(SopFailure.MISSING_ARG, "a subcommand is required")
    command, rest = argv[0], argv[1:]
    entry = _COMMANDS.get(command)
    if entry is None:
        raise SopError(SopFailure.UNSUPPORTED_SUBCOMMAND, f"subcommand {command!r} not supported")
    build, handler, reads_stdin = entry
    parser = _Parser(prog=f"pushprov-sop {command}", add_help=False, exit_on_error=False)
    build(parser)
    try:
        args = parser.parse_args(rest)
    except argparse.ArgumentError as error:
        parser.error(str(error))
    data = read_capped(stdin, "standard input") if reads_stdin else b""
    return handler(args, data)


# ---------------------------------------------------------------------------------------------
# version, list-profiles


def _build_version(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--backend", action="store_true")
    which.add_argument("--extended", action="store_true")
    which.add_argument("--sop-spec", action="store_true")


def _version(args: argparse.Namespace, _data: bytes) -> bytes:
    backend = (
        f"pushprov.openpgp {__version__} on pyca/cryptography {cryptography.__version__}"
        f" ({_openssl.openssl_version_text()})"
    )
    if args.backend:
        return f"{backend}\n".encode()
    if args.sop_spec:
        return f"{SOP_SPEC}\nthe subset that fits Google's OpenPGP profile (RSA v4 only)\n".encode()
    if args.extended:
        lines = [f"pushprov-sop {__version__}", backend, SOP_SPEC, _profile_line()]
        return ("\n".join(lines) + "\n").encode()
    return f"pushprov-sop {__version__}\n".encode()


def _profile_line() -> str:
    policy = GOOGLE_PROFILE
    hashes = ", ".join(sorted(policy.signature_hashes))
    return (
        f"profile: signs {policy.signing_hash}, accepts {hashes};"
        f" encrypts {policy.cipher}, accepts {', '.join(sorted(policy.ciphers))};"
        f" RSA >= {policy.min_rsa_bits} bits"
    )


def _build_list_profiles(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("subcommand")


def _list_profiles(args: argparse.Namespace, _data: bytes) -> bytes:
    if args.subcommand == "generate-key":
        lines = [f"{name}: {text}" for name, (_bits, text) in _GENERATE_PROFILES.items()]
    elif args.subcommand == "encrypt":
        lines = [f"{name}: {text}" for name, text in _ENCRYPT_PROFILES.items()]
    else:
        raise SopError(SopFailure.UNSUPPORTED_PROFILE, f"{args.subcommand} has no profiles")
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------------------------------------
# keys


def _build_generate_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-armor", action="store_true")
    parser.add_argument("--with-key-password")
    parser.add_argument("--profile", default="default")
    parser.add_argument("userids", nargs="*")


def _generate_key(args: argparse.Namespace, _data: bytes) -> bytes:
    if args.profile not in _GENERATE_PROFILES:
        raise SopError(SopFailure.UNSUPPORTED_PROFILE, f"no generate-key profile {args.profile!r}")
    if not args.userids:
        raise SopError(SopFailure.MISSING_ARG, "the profile's keys carry one user ID: give it")
    if len(args.userids) > 1:
        raise SopError(SopFailure.UNSUPPORTED_OPTION, "one user ID per key in this profile")
    password = None
    if args.with_key_password is not None:
        password = _human_password(read_input(args.with_key_password))
    bits, _text = _GENERATE_PROFILES[args.profile]
    try:
        key = openpgp.generate_key(args.userids[0], bits=bits, at=now())
    except UsageError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None
    armored = key.armor(password).encode("ascii")
    return openpgp.dearmor_data(armored) if args.no_armor else armored


def _build_extract_cert(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-armor", action="store_true")


def _extract_cert(args: argparse.Namespace, data: bytes) -> bytes:
    certs = _certificates(data)
    binary = b"".join(cert.to_bytes() for cert in certs)
    return binary if args.no_armor else openpgp.armor_data(binary)


# ---------------------------------------------------------------------------------------------
# signatures


def _build_sign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-armor", action="store_true")
    parser.add_argument("--as", dest="as_", choices=("binary", "text"), default="binary")
    parser.add_argument("--micalg-out")
    parser.add_argument("--with-key-password", action="append", default=[])
    parser.add_argument("keys", nargs="*")


def _sign(args: argparse.Namespace, data: bytes) -> bytes:
    keys = _signing_keys(args.keys, args.with_key_password)
    text = _text_mode(args.as_, data)
    signature = _signing(lambda at: openpgp.sign_detached(data, sign_with=keys, at=at, text=text))
    if args.micalg_out is not None:
        write_output(args.micalg_out, f"pgp-{GOOGLE_PROFILE.signing_hash.lower()}".encode())
    return signature if args.no_armor else openpgp.armor_data(signature)


def _build_verify(parser: argparse.ArgumentParser) -> None:
    _add_time_window(parser, "--not-before", "--not-after")
    parser.add_argument("signatures")
    parser.add_argument("certs", nargs="*")


def _verify(args: argparse.Namespace, data: bytes) -> bytes:
    if not args.certs:
        raise SopError(SopFailure.MISSING_ARG, "verify needs at least one certificate")
    signatures = read_input(args.signatures)
    certs = _certificate_files(args.certs)
    at, not_before = _window(args.not_before, args.not_after)
    verified = _verifying(
        lambda: openpgp.verify_detached(data, signatures, verify_with=certs, at=at)
    )
    return _verifications(verified, not_before)


def _build_inline_sign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-armor", action="store_true")
    parser.add_argument(
        "--as", dest="as_", choices=("binary", "text", "clearsigned"), default="binary"
    )
    parser.add_argument("--with-key-password", action="append", default=[])
    parser.add_argument("keys", nargs="*")


def _inline_sign(args: argparse.Namespace, data: bytes) -> bytes:
    keys = _signing_keys(args.keys, args.with_key_password)
    if args.as_ == "clearsigned":
        _text_mode("text", data)
        if args.no_armor:
            raise SopError(SopFailure.INCOMPATIBLE_OPTIONS, "a cleartext message is armored")
        text_data = data.decode("utf-8")
        return _signing(lambda at: openpgp.sign_cleartext(text_data, sign_with=keys, at=at))
    text = _text_mode(args.as_, data)
    message = _signing(lambda at: openpgp.sign_inline(data, sign_with=keys, at=at, text=text))
    return message if args.no_armor else openpgp.encode_message(message, Encoding.ARMOR)


def _build_inline_verify(parser: argparse.ArgumentParser) -> None:
    _add_time_window(parser, "--not-before", "--not-after")
    parser.add_argument("--verifications-out")
    parser.add_argument("certs", nargs="*")


def _inline_verify(args: argparse.Namespace, data: bytes) -> bytes:
    if not args.certs:
        raise SopError(SopFailure.MISSING_ARG, "inline-verify needs at least one certificate")
    certs = _certificate_files(args.certs)
    at, not_before = _window(args.not_before, args.not_after)
    cleartext = data.lstrip().startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
    verify = openpgp.verify_cleartext if cleartext else openpgp.verify_inline
    plaintext, verified = _verifying(lambda: verify(data, verify_with=certs, at=at))
    lines = _verifications(verified, not_before)
    if args.verifications_out is not None:
        write_output(args.verifications_out, lines)
    return plaintext


# ---------------------------------------------------------------------------------------------
# encryption


def _build_encrypt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-armor", action="store_true")
    parser.add_argument("--as", dest="as_", choices=("binary", "text"), default="binary")
    parser.add_argument("--with-password", action="append", default=[])
    parser.add_argument("--sign-with", action="append", default=[])
    parser.add_argument("--with-key-password", action="append", default=[])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--session-key-out")
    parser.add_argument("certs", nargs="*")


def _encrypt(args: argparse.Namespace, data: bytes) -> bytes:
    if args.with_password:
        raise SopError(SopFailure.UNSUPPORTED_OPTION, "the profile encrypts to RSA keys only")
    if args.session_key_out is not None:
        raise SopError(SopFailure.UNSUPPORTED_OPTION, "session keys never leave pushprov")
    if args.profile not in _ENCRYPT_PROFILES:
        raise SopError(SopFailure.UNSUPPORTED_PROFILE, f"no encrypt profile {args.profile!r}")
    if not args.certs:
        raise SopError(SopFailure.MISSING_ARG, "encrypt needs at least one certificate")
    if not args.sign_with:
        raise SopError(SopFailure.MISSING_ARG, "the profile signs every message: give --sign-with")
    text = _text_mode(args.as_, data)
    certs = _certificate_files(args.certs)
    keys = _signing_keys(args.sign_with, args.with_key_password)
    at = now()
    for cert in certs:
        try:
            cert.encryption_key(GOOGLE_PROFILE, at)
        except KeyUnusableError as error:
            raise SopError(SopFailure.CERT_CANNOT_ENCRYPT, error.message) from None
    sealed = _signing(
        lambda when: openpgp.seal(data, sign_with=keys, encrypt_to=certs, at=when, text=text), at
    )
    return sealed if args.no_armor else openpgp.encode_message(sealed, Encoding.ARMOR)


def _build_decrypt(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session-key-out")
    parser.add_argument("--with-session-key", action="append", default=[])
    parser.add_argument("--with-password", action="append", default=[])
    parser.add_argument("--with-key-password", action="append", default=[])
    parser.add_argument("--verifications-out")
    parser.add_argument("--verify-with", action="append", default=[])
    _add_time_window(parser, "--verify-not-before", "--verify-not-after")
    parser.add_argument("keys", nargs="*")


def _decrypt(args: argparse.Namespace, data: bytes) -> bytes:
    if args.session_key_out is not None or args.with_session_key:
        raise SopError(SopFailure.UNSUPPORTED_OPTION, "session keys never leave pushprov")
    if args.with_password:
        raise SopError(SopFailure.UNSUPPORTED_OPTION, "the profile decrypts with RSA keys only")
    if not args.verify_with or args.verifications_out is None:
        raise SopError(
            SopFailure.INCOMPLETE_VERIFICATION,
            "plaintext is released only after a trusted signature:"
            " give --verify-with and --verifications-out",
        )
    if not args.keys:
        raise SopError(SopFailure.MISSING_ARG, "decrypt needs at least one secret key")
    keys = _secret_key_files(args.keys, args.with_key_password)
    certs = _certificate_files(args.verify_with)
    at, not_before = _window(args.verify_not_before, args.verify_not_after)
    try:
        opened = openpgp.open_message(data, decrypt_with=keys, verify_with=certs, at=at)
    except (DecryptionFailedError, UnsupportedError) as error:
        raise SopError(SopFailure.CANNOT_DECRYPT, error.message) from None
    except SignatureInvalidError as error:
        raise SopError(SopFailure.NO_SIGNATURE, error.message) from None
    except PolicyViolationError as error:
        raise SopError(_decrypt_refusal(error.message), error.message) from None
    except MalformedInputError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None
    lines = _verifications(opened.signatures, not_before)
    write_output(args.verifications_out, lines)
    return opened.plaintext


def _decrypt_refusal(message: str) -> SopFailure:
    """Which SOP failure a policy refusal met while opening is (the openpgp module's reasons)."""
    if message.startswith(("cipher ", "encrypted data without integrity")):
        return SopFailure.CANNOT_DECRYPT
    if message.startswith(("the message is not encrypted", "a cleartext-signed message")):
        return SopFailure.BAD_DATA
    return SopFailure.NO_SIGNATURE  # a refused hash, a small or non-RSA signing key


# ---------------------------------------------------------------------------------------------
# armor


def _build_plain(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def _armor(_args: argparse.Namespace, data: bytes) -> bytes:
    return _bad_data(lambda: openpgp.armor_data(data))


def _dearmor(_args: argparse.Namespace, data: bytes) -> bytes:
    return _bad_data(lambda: openpgp.dearmor_data(data))


# ---------------------------------------------------------------------------------------------
# shared pieces


def _bad_data(action: Callable[[], bytes]) -> bytes:
    try:
        return action()
    except MalformedInputError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None


def _text_mode(as_: str, data: bytes) -> bool:
    if as_ != "text":
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise SopError(SopFailure.EXPECTED_TEXT, "--as=text needs UTF-8 input") from None
    return True


def _human_password(raw: bytes) -> bytes:
    """A password as the draft wants it: UTF-8, trailing whitespace removed."""
    try:
        return raw.decode("utf-8").rstrip().encode("utf-8")
    except UnicodeDecodeError:
        raise SopError(SopFailure.PASSWORD_NOT_HUMAN_READABLE, "password is not UTF-8") from None


def _verifying(action: Callable[[], _T]) -> _T:
    """verify and inline-verify: no good or acceptable signature is NO_SIGNATURE."""
    try:
        return action()
    except (SignatureInvalidError, PolicyViolationError) as error:
        raise SopError(SopFailure.NO_SIGNATURE, error.message) from None
    except MalformedInputError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None


def _signing(action: Callable[[_dt.datetime], bytes], at: _dt.datetime | None = None) -> bytes:
    try:
        return action(now() if at is None else at)
    except KeyUnusableError as error:
        raise SopError(SopFailure.KEY_CANNOT_SIGN, error.message) from None
    except InputTooLargeError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None


def _certificates(data: bytes) -> list[openpgp.Certificate]:
    try:
        return openpgp.read_certificates(data)
    except UnsupportedError as error:
        raise SopError(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, error.message) from None
    except KeyInvalidError as error:
        raise SopError(SopFailure.BAD_DATA, error.message) from None


def _certificate_files(names: Sequence[str]) -> list[openpgp.Certificate]:
    return [cert for name in names for cert in _certificates(read_input(name))]


def _secret_key_files(names: Sequence[str], passwords: Sequence[str]) -> list[openpgp.SecretKey]:
    candidates: list[bytes | None] = [None]
    for name in passwords:
        raw = read_input(name)
        # The draft: try the password as given, then without trailing whitespace.
        candidates += [raw, raw.rstrip()] if raw.rstrip() != raw else [raw]
    keys: list[openpgp.SecretKey] = []
    for name in names:
        data = read_input(name)
        for index, password in enumerate(candidates):
            try:
                keys += openpgp.read_secret_keys(data, passphrase=password)
                break
            except PassphraseError as error:
                if index == len(candidates) - 1:
                    raise SopError(SopFailure.KEY_IS_PROTECTED, error.message) from None
            except UnsupportedError as error:
                raise SopError(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, error.message) from None
            except KeyInvalidError as error:
                raise SopError(SopFailure.BAD_DATA, error.message) from None
    return keys


def _signing_keys(names: Sequence[str], passwords: Sequence[str]) -> list[openpgp.SecretKey]:
    if not names:
        raise SopError(SopFailure.MISSING_ARG, "at least one secret key is required")
    keys = _secret_key_files(names, passwords)
    at = now()
    for key in keys:
        try:
            key.signer(GOOGLE_PROFILE, at)
        except KeyUnusableError as error:
            raise SopError(SopFailure.KEY_CANNOT_SIGN, error.message) from None
    return keys


def _add_time_window(parser: argparse.ArgumentParser, before: str, after: str) -> None:
    parser.add_argument(before)
    parser.add_argument(after)


def _window(
    not_before: str | None, not_after: str | None
) -> tuple[_dt.datetime, _dt.datetime | None]:
    """(reference time, earliest signature time): ``--not-after`` is the reference time."""
    start = None if not_before in (None, "-") else _when(not_before)
    at = now() if not_after in (None, "-", "now") else _when(not_after)
    if start is not None and start > at:
        raise SopError(SopFailure.INCOMPATIBLE_OPTIONS, "--not-before lies after --not-after")
    return at, start


def _when(text: str | None) -> _dt.datetime:
    if text is None or text == "now":
        return now()
    try:
        return parse_time(text)
    except UsageError as error:
        raise SopError(SopFailure.GENERIC, error.message) from None


def _verifications(verified: Sequence[VerifiedSignature], not_before: _dt.datetime | None) -> bytes:
    """One VERIFICATIONS line per good signature: time, signing key, certificate (§ verify)."""
    kept = [
        sig
        for sig in verified
        if sig.created is not None and (not_before is None or sig.created >= not_before)
    ]
    if not kept:
        raise SopError(SopFailure.NO_SIGNATURE, "no signature in the time window")
    return "".join(
        f"{sig.created:%Y-%m-%dT%H:%M:%SZ} {sig.signing_key} {sig.certificate}\n"
        for sig in kept
        if sig.created is not None
    ).encode()


_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], _Handler, bool]] = {
    "version": (_build_version, _version, False),
    "list-profiles": (_build_list_profiles, _list_profiles, False),
    "generate-key": (_build_generate_key, _generate_key, False),
    "extract-cert": (_build_extract_cert, _extract_cert, True),
    "sign": (_build_sign, _sign, True),
    "verify": (_build_verify, _verify, True),
    "inline-sign": (_build_inline_sign, _inline_sign, True),
    "inline-verify": (_build_inline_verify, _inline_verify, True),
    "encrypt": (_build_encrypt, _encrypt, True),
    "decrypt": (_build_decrypt, _decrypt, True),
    "armor": (_build_plain, _armor, True),
    "dearmor": (_build_plain, _dearmor, True),
}
