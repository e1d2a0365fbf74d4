"""Command-line face. Habits of sq/sop: subcommands, stdin to stdout, secrets never on argv,
``--json`` for machines, ``--at`` as the reference clock, fixed exit statuses per error class.

On failure nothing is written to stdout and stderr gets one line ``error: <code>: <message>``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from .. import _api, jose, openpgp
from .._card import Card, Gopc
from .._clock import now, parse_duration, parse_time
from .._encoding import Encoding
from .._errors import UsageError
from .._opened import Opened
from .._policy import GOOGLE_PROFILE, Policy
from .._text import printable_lines
from ._demo import run_demo
from ._exits import exit_status_epilog, report_failure
from ._init import add_init_command, run_init
from ._io import first_line, json_output, read_capped, read_stdin
from ._keys import (  # the key store: `keys` commands and `--store` for seal/open
    add_keys_commands,
    add_store_options,
    run_keys_command,
    store_keys_for_open,
    store_keys_for_seal,
    uses_store,
)
from ._rehearsal import run_rehearsal
from ._service import add_sandbox_commands, add_service_commands, run_service_command
from ._store import add_store_commands, run_store_command

__all__ = ["main"]


# A JWK thumbprint (RFC 7638: base64url of SHA-256, 43 characters) may begin with "-".
_THUMBPRINT = re.compile(r"-[A-Za-z0-9_-]{42}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's default prints usage and exits 2; keep the one-line error contract.
        raise UsageError(message)

    def _parse_optional(self, arg_string: str) -> Any:
        # A key id that begins with "-" is an argument, not an unknown option: without this,
        # one JWK in 64 could only be named after "--". No option of ours is 43 characters of
        # base64url, so nothing else is taken for one.
        if _THUMBPRINT.fullmatch(arg_string) and arg_string not in self._option_string_actions:
            return None
        return super()._parse_optional(arg_string)


def _add_time(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="TIME",
        type=parse_time,
        help="reference time for every validity and policy check (ISO 8601 or Unix seconds); "
        "default: now",
    )


def _add_passphrase(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        metavar="FILE",
        help="file whose first line unlocks protected secret keys (never pass secrets on argv)",
    )


def _add_encoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoding",
        choices=[e.value for e in Encoding],
        default=None,
        help="output encoding for pgp (default: base64, RFC 4648 §4, as Google's GOPC spec asks)",
    )


def _add_format(parser: argparse.ArgumentParser, *, sealing: bool) -> None:
    parser.add_argument(
        "--format",
        choices=["pgp", "jwe"],
        default="pgp",
        help="envelope: OpenPGP (default) or JWE with a nested JWS; never guessed from input. "
        "With jwe, key files are JWK, JWK Set or PEM",
    )
    if sealing:
        jwe = parser.add_argument_group("JWE sealing (with --format jwe)")
        jwe.add_argument(
            "--alg",
            help='key management: RSA-OAEP-256 (default) or RSA1_5 (recipient JWK "alg": "RSA1_5")',
        )
        jwe.add_argument("--enc", help="content encryption: A256GCM (default) or A128CBC-HS256")
        jwe.add_argument("--jws-alg", help="inner signature: RS256 (default), PS256, RS384, RS512")
        jwe.add_argument("--zip", action="store_true", help='compress the payload (zip: "DEF")')
    else:
        parser.add_argument(
            "--allow-unsigned",
            action="store_true",
            help="(jwe only) accept a JWE whose plaintext is the bare payload, as Google's older "
            "variant allows; never the default. --verify-with becomes optional: a nested JWS "
            "is still verified, and refused when no key verifies it",
        )


def _add_seal_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sign-with",
        metavar="SECRET_KEY_FILE",
        action="append",
        help="secret key to sign with (repeat to sign with several keys)",
    )
    parser.add_argument(
        "--encrypt-to",
        metavar="CERT_FILE",
        action="append",
        help="certificate to encrypt to (repeat for several recipients)",
    )
    add_store_options(parser)


def _add_open_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decrypt-with",
        metavar="SECRET_KEY_FILE",
        action="append",
        help="secret key that may decrypt (repeat: any of several)",
    )
    parser.add_argument(
        "--verify-with",
        metavar="CERT_FILE",
        action="append",
        help="trusted signer certificate (repeat: one valid signature by any of them suffices)",
    )
    add_store_options(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pushprov",
        description="Seal and open Google Opaque Payment Cards (GOPCs) under Google's profile: "
        "SHA-384 signatures, AES-256, RSA keys valid one year (two at most), several keys at "
        "once. Data flows stdin -> stdout.",
        epilog=exit_status_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    key = commands.add_parser("key", help="generate and inspect keys").add_subparsers(
        dest="key_command", required=True, metavar="SUBCOMMAND"
    )
    generate = key.add_parser(
        "generate",
        help="generate an RSA key to Google's rules",
        description="Generate an RSA key: [CS] primary + [E] subkey, AES-256/SHA-384 "
        "preferences, expiring after --expires (at most 2 years). With --format jwk: an RSA "
        "JWK pair whose kid is its RFC 7638 thumbprint, with iat/exp recorded.",
    )
    generate.add_argument(
        "--format",
        choices=["pgp", "jwk"],
        default="pgp",
        help="OpenPGP key (default) or an RSA JWK pair for the JWE envelope",
    )
    generate.add_argument("--uid", help="user ID, e.g. 'Issuer <ops@example>' (pgp only)")
    generate.add_argument(
        "--alg",
        help="(jwk only) pin the key to one algorithm, e.g. RSA1_5 for Google's legacy JWE "
        "variant: RSA1_5 is used only with keys pinned to it",
    )
    generate.add_argument("--bits", type=int, default=None, help="RSA size (default 3072)")
    generate.add_argument(
        "--expires", default="365d", type=parse_duration, help="validity: 365d, 52w, 1y, ..."
    )
    generate.add_argument("--secret-out", required=True, metavar="FILE")
    generate.add_argument("--public-out", required=True, metavar="FILE")
    _add_passphrase(generate)
    _add_time(generate)

    inspect = key.add_parser(
        "inspect",
        help="show fingerprints, sizes, flags, expiry and the policy verdict",
        description="Reads OpenPGP keys, JWKs, JWK Sets (secret parts are not unlocked or shown).",
    )
    inspect.add_argument("file", metavar="FILE", help="key or certificate file ('-' for stdin)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    _add_time(inspect)

    seal = commands.add_parser("seal", help="sign and encrypt stdin to stdout")
    _add_seal_keys(seal)
    _add_format(seal, sealing=True)
    _add_encoding(seal)
    _add_passphrase(seal)
    _add_time(seal)

    open_ = commands.add_parser("open", help="decrypt and verify stdin to stdout")
    _add_open_keys(open_)
    _add_format(open_, sealing=False)
    open_.add_argument("--json", action="store_true", help="JSON with plaintext (base64) + facts")
    _add_passphrase(open_)
    _add_time(open_)

    gopc = commands.add_parser("gopc", help="seal and open Google Opaque Payment Cards")
    gopc_commands = gopc.add_subparsers(dest="gopc_command", required=True, metavar="SUBCOMMAND")
    gopc_seal = gopc_commands.add_parser(
        "seal",
        help="card JSON on stdin -> sealed GOPC on stdout",
        description='Reads {"accountNumber":..,"expiryMonth":"MM","expiryYear":"YY"} on stdin.',
    )
    gopc_seal.add_argument("--session-id", required=True, help="serverSessionId from Google's SDK")
    _add_seal_keys(gopc_seal)
    _add_format(gopc_seal, sealing=True)
    _add_encoding(gopc_seal)
    _add_passphrase(gopc_seal)
    _add_time(gopc_seal)
    gopc_open = gopc_commands.add_parser(
        "open",
        help="sealed GOPC on stdin -> GOPC JSON on stdout (as Google would open it)",
    )
    gopc_open.add_argument("--session-id", required=True, help="the serverSessionId expected")
    _add_open_keys(gopc_open)
    _add_format(gopc_open, sealing=False)
    gopc_open.add_argument(
        "--masked", action="store_true", help="print a masked summary instead of the GOPC"
    )
    gopc_open.add_argument("--json", action="store_true", help="GOPC with envelope facts")
    _add_passphrase(gopc_open)
    _add_time(gopc_open)

    add_init_command(commands)
    add_keys_commands(commands)
    add_store_commands(commands)
    add_service_commands(commands)
    add_sandbox_commands(commands)

    commands.add_parser(
        "demo",
        help="end-to-end demo on throwaway sandbox keys (issuer and stand-in Google)",
    )
    return parser


# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    stdout = sys.stdout.buffer
    try:
        args = build_parser().parse_args(argv)
        if args.command == "rehearse":
            # The report goes out whatever the verdict; the status carries the verdict.
            output, status = run_rehearsal(bits=args.bits, step_seconds=args.step_seconds)
            stdout.write(output)
            stdout.flush()
            return status
        output = _dispatch(args, sys.stdin.buffer)
    except KeyboardInterrupt:
        return 130
    except Exception as failure:
        return report_failure(failure)
    stdout.write(output)
    stdout.flush()
    return 0


def _dispatch(args: argparse.Namespace, stdin: BinaryIO) -> bytes:
    policy = GOOGLE_PROFILE
    at: _dt.datetime = getattr(args, "at", None) or now()
    if args.command == "key":
        if args.key_command == "generate":
            return _key_generate(args, at, policy)
        return _key_inspect(args, at, policy)
    if args.command == "demo":
        return run_demo(at)
    if args.command == "init":
        return run_init(args, at)
    if args.command == "keys":
        return run_keys_command(args, stdin)
    if args.command == "store":
        return run_store_command(args)
    if args.command in ("serve", "clients", "sandbox"):
        return run_service_command(args, at)
    passphrase = _passphrase(args)
    fmt: _api.Format = args.format
    if args.command == "seal" or (args.command == "gopc" and args.gopc_command == "seal"):
        signers: Sequence[openpgp.SecretKey | jose.JwkKey]
        recipients: Sequence[openpgp.Certificate | jose.JwkKey]
        if uses_store(args, "sign_with", "encrypt_to"):
            signers, recipients = store_keys_for_seal(args, at, policy, fmt)
        else:
            signers = _secret_keys(args.sign_with, passphrase, policy, fmt)
            recipients = _public_keys(args.encrypt_to, policy, fmt)
        encoding = Encoding(args.encoding) if args.encoding else None
        jwe = _jwe_options(args)
        if args.command == "seal":
            plaintext = read_stdin(stdin, policy.max_plaintext_bytes)
        else:
            card = Card.from_json(read_stdin(stdin, 4096))
            plaintext = Gopc(server_session_id=args.session_id, card=card).to_json()
        sealed = _api.seal_message(
            plaintext,
            sign_with=signers,
            encrypt_to=recipients,
            format=fmt,
            encoding=encoding,
            jwe=jwe,
            at=at,
            policy=policy,
        )
        # Text goes out as one line; binary and armor (which ends its own lines) as they are.
        return sealed if encoding is Encoding.BINARY or sealed.endswith(b"\n") else sealed + b"\n"
    decryptors: Sequence[openpgp.SecretKey | jose.JwkKey]
    verifiers: Sequence[openpgp.Certificate | jose.JwkKey]
    # A JWE opt-in needs no signer to trust; a nested JWS is still verified (with none: refused).
    unsigned_jwe = args.allow_unsigned and fmt == "jwe"
    needed = ("decrypt_with",) if unsigned_jwe else ("decrypt_with", "verify_with")
    if uses_store(args, *needed):
        decryptors, verifiers = store_keys_for_open(args, policy, fmt)
    else:
        decryptors = _secret_keys(args.decrypt_with, passphrase, policy, fmt)
        verifiers = _public_keys(args.verify_with or [], policy, fmt)
    message = read_stdin(stdin, max(policy.max_message_bytes, policy.max_jose_token_bytes))
    if args.command == "open":
        opened = _api.open_message(
            message,
            decrypt_with=decryptors,
            verify_with=verifiers,
            format=fmt,
            allow_unsigned=args.allow_unsigned,
            at=at,
            policy=policy,
        )
        if args.json:
            facts = _facts(opened)
            facts["plaintext_base64"] = base64.b64encode(opened.plaintext).decode()
            return json_output(facts)
        return opened.plaintext
    result = _api.open_gopc(
        message,
        session_id=args.session_id,
        decrypt_with=decryptors,
        verify_with=verifiers,
        format=fmt,
        allow_unsigned=args.allow_unsigned,
        at=at,
        policy=policy,
    )
    if args.masked:
        return _masked_summary(result).encode() + b"\n"
    if args.json:
        facts = _facts(result.envelope)
        facts["gopc"] = json.loads(result.gopc.to_json())
        return json_output(facts)
    return result.gopc.to_json() + b"\n"


def _jwe_options(args: argparse.Namespace) -> _api.JweOptions | None:
    chosen = (args.alg, args.enc, args.jws_alg)
    if args.format != "jwe":
        if any(chosen) or args.zip:
            raise UsageError("--alg, --enc, --jws-alg and --zip go with --format jwe")
        return None
    return _api.JweOptions(alg=args.alg, enc=args.enc, jws_alg=args.jws_alg, compress=args.zip)


def _facts(opened: Opened) -> dict[str, Any]:
    return {
        "format": opened.format,
        "cipher": opened.cipher,
        "decryption_key": opened.decryption_key,
        "signatures": [
            {
                "certificate": sig.certificate,
                "signing_key": sig.signing_key,
                "hash": sig.hash_algorithm,
                "created": sig.created.isoformat() if sig.created else None,
            }
            for sig in opened.signatures
        ],
    }


def _masked_summary(result: _api.OpenedGopc) -> str:
    card = result.gopc.card
    signers = ", ".join(sig.certificate[-16:] for sig in result.envelope.signatures)
    return (
        f"GOPC ok: card {card.account_number.masked} exp {card.expiry_month}/{card.expiry_year}, "
        f"session {result.gopc.server_session_id[:12]}…, cipher {result.envelope.cipher}, "
        f"signed by {signers}"
    )


def _passphrase(args: argparse.Namespace) -> bytes | None:
    path = getattr(args, "passphrase_file", None)
    if path is None:
        return None
    return first_line(path)


def _secret_keys(
    paths: list[str], passphrase: bytes | None, policy: Policy, fmt: str
) -> list[openpgp.SecretKey | jose.JwkKey]:
    keys: list[openpgp.SecretKey | jose.JwkKey] = []
    for path in paths:
        data = read_capped(path, policy.max_key_file_bytes)
        if fmt == "jwe":
            keys += _jwks(data, policy)
        else:
            keys += openpgp.read_secret_keys(data, passphrase=passphrase, policy=policy)
    return keys


def _public_keys(
    paths: list[str], policy: Policy, fmt: str
) -> list[openpgp.Certificate | jose.JwkKey]:
    keys: list[openpgp.Certificate | jose.JwkKey] = []
    for path in paths:
        data = read_capped(path, policy.max_key_file_bytes)
        if fmt == "jwe":
            keys += [key.public() for key in _jwks(data, policy)]
        else:
            keys += openpgp.read_certificates(data, policy=policy)
    return keys


def _jwks(data: bytes, policy: Policy) -> list[jose.JwkKey]:
    """A JWK Set, a single JWK or a PEM key."""
    if data.lstrip().startswith(b"{") and b'"keys"' in data:
        return jose.load_jwks(data, policy=policy)
    return [jose.load_jwk(data, policy=policy)]


def _key_generate(args: argparse.Namespace, at: _dt.datetime, policy: Policy) -> bytes:
    passphrase = _passphrase(args)
    if args.format == "jwk":
        if passphrase is not None or args.uid is not None:
            raise UsageError("--uid and --passphrase-file go with --format pgp")
        jwk = jose.generate_jwk(
            bits=args.bits, validity=args.expires, at=at, policy=policy, alg=args.alg
        )
        _write_private(Path(args.secret_out), jwk.to_json(private=True).encode() + b"\n")
        Path(args.public_out).write_text(jwk.public().to_json() + "\n")
        return (jwk.kid + "\n").encode()
    if args.uid is None:
        raise UsageError("--uid is required for an OpenPGP key")
    if args.alg is not None:
        raise UsageError("--alg goes with --format jwk")
    key = openpgp.generate_key(
        args.uid, bits=args.bits, validity=args.expires, at=at, policy=policy
    )
    _write_private(Path(args.secret_out), key.armor(passphrase).encode())
    Path(args.public_out).write_text(key.certificate.armor())
    return (key.fingerprint + "\n").encode()


def _write_private(path: Path, data: bytes) -> None:
    """Create the secret key file 0600 from the start, never world-readable for a moment."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists; refusing to overwrite a secret key") from None
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_inspect(args: argparse.Namespace, at: _dt.datetime, policy: Policy) -> bytes:
    data = read_capped(args.file, policy.max_key_file_bytes)
    if data.lstrip().startswith(b"{"):
        return _jwk_inspect(_jwks(data, policy), args, at, policy)
    certificates = openpgp.read_certificates(data, policy=policy)
    has_secret = openpgp.contains_secret_key(data)
    report = []
    for cert in certificates:
        problems = cert.policy_problems(policy, at)
        report.append(
            {
                "fingerprint": cert.fingerprint,
                "user_ids": list(cert.user_ids),
                "secret": has_secret,
                "keys": [
                    {
                        "fingerprint": info.fingerprint,
                        "key_id": info.key_id,
                        "algorithm": info.algorithm,
                        "bits": info.bits,
                        "capabilities": info.capabilities,
                        "created": info.created.isoformat(),
                        "expires": info.expires.isoformat() if info.expires else None,
                        "revoked": info.revoked,
                    }
                    for info in cert.key_infos()
                ],
                "policy": {"ok": not problems, "problems": problems},
            }
        )
    return json_output(report) if args.json else _render_inspect(report)


def _jwk_inspect(
    keys: list[jose.JwkKey], args: argparse.Namespace, at: _dt.datetime, policy: Policy
) -> bytes:
    report = []
    for key in keys:
        # The keystore's own check, so inspect agrees with what an import would refuse.
        problems = key.policy_problems(policy, at)
        report.append(
            {
                "kid": key.kid,
                "thumbprint": key.thumbprint,
                "private": key.is_private,
                "bits": key.bits,
                "alg": key.alg,
                "use": key.use,
                "created": key.created.isoformat() if key.created else None,
                "expires": key.expires.isoformat() if key.expires else None,
                "policy": {"ok": not problems, "problems": problems},
            }
        )
    if args.json:
        return json_output(report)
    lines = []
    for item in report:
        kind = "private JWK" if item["private"] else "public JWK"
        expires = str(item["expires"] or "never")[:10]
        lines.append(
            f"{kind} kid {item['kid']}  RSA {item['bits']}  alg {item['alg'] or 'any'}"
            f"  expires {expires}"
        )
        policy_report = item["policy"]
        assert isinstance(policy_report, dict)
        verdict = "ok" if policy_report["ok"] else "NOT OK: " + "; ".join(policy_report["problems"])
        lines.append(f"  policy   {verdict}")
    return printable_lines(lines)


def _render_inspect(report: list[dict[str, Any]]) -> bytes:
    # Every value goes out through printable_lines: a user ID's newline or ESC[8m must not
    # forge or hide a line (issue 14, finding 8).
    lines = []
    for cert in report:
        kind = "secret key" if cert["secret"] else "certificate"
        lines.append(f"{kind} {cert['fingerprint']}")
        lines += [f"  user ID  {uid}" for uid in cert["user_ids"]]
        for index, key in enumerate(cert["keys"]):
            role = "primary" if index == 0 else "subkey "
            expires = key["expires"][:10] if key["expires"] else "never"
            lines.append(
                f"  {role}  {key['algorithm']} {key['bits']} [{key['capabilities'].upper()}]"
                f"  created {key['created'][:10]}  expires {expires}"
                f"{'  REVOKED' if key['revoked'] else ''}  {key['fingerprint']}"
            )
        policy = cert["policy"]
        verdict = "ok" if policy["ok"] else "NOT OK: " + "; ".join(policy["problems"])
        lines.append(f"  policy   {verdict}")
    return printable_lines(lines)
