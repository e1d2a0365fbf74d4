"""``pushprov key generate`` and ``pushprov key inspect``: key files, no key store."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
from pathlib import Path
from typing import Any, BinaryIO

from .. import jose, openpgp
from .._clock import parse_duration
from .._errors import UsageError
from .._policy import GOOGLE_PROFILE, Policy
from .._text import printable_lines
from ._io import json_output, read_capped
from ._keyfiles import jwks
from ._options import Subparsers, add_passphrase, add_time, passphrase

__all__ = ["register"]


def register(commands: Subparsers) -> None:
    key = commands.add_parser("key", help="generate and inspect keys").add_subparsers(
        dest="key_command", required=True, metavar="SUBCOMMAND"
    )
    _add_generate(key)
    inspect = key.add_parser(
        "inspect",
        help="show fingerprints, sizes, flags, expiry and the policy verdict",
        description="Reads OpenPGP keys, JWKs, JWK Sets (secret parts are not unlocked or shown).",
    )
    inspect.add_argument("file", metavar="FILE", help="key or certificate file ('-' for stdin)")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    add_time(inspect)
    inspect.set_defaults(handler=_inspect)


def _add_generate(key: Subparsers) -> None:
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
    add_passphrase(generate)
    add_time(generate)
    generate.set_defaults(handler=_generate)


# ---------------------------------------------------------------------------------------------
# generate


def _generate(args: argparse.Namespace, at: _dt.datetime, _: BinaryIO) -> bytes:
    key_passphrase = passphrase(args)
    if args.format == "jwk":
        if key_passphrase is not None or args.uid is not None:
            raise UsageError("--uid and --passphrase-file go with --format pgp")
        jwk = jose.generate_jwk(
            bits=args.bits, validity=args.expires, at=at, policy=GOOGLE_PROFILE, alg=args.alg
        )
        _write_private(Path(args.secret_out), jwk.to_json(private=True).encode() + b"\n")
        Path(args.public_out).write_text(jwk.public().to_json() + "\n")
        return (jwk.kid + "\n").encode()
    if args.uid is None:
        raise UsageError("--uid is required for an OpenPGP key")
    if args.alg is not None:
        raise UsageError("--alg goes with --format jwk")
    key = openpgp.generate_key(
        args.uid, bits=args.bits, validity=args.expires, at=at, policy=GOOGLE_PROFILE
    )
    _write_private(Path(args.secret_out), key.armor(key_passphrase).encode())
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


# ---------------------------------------------------------------------------------------------
# inspect


def _inspect(args: argparse.Namespace, at: _dt.datetime, _: BinaryIO) -> bytes:
    policy = GOOGLE_PROFILE
    data = read_capped(args.file, policy.max_key_file_bytes)
    if data.lstrip().startswith(b"{"):
        report = [_jwk_report(key, at, policy) for key in jwks(data, policy)]
        return json_output(report) if args.json else _render_jwks(report)
    certificates = openpgp.read_certificates(data, policy=policy)
    has_secret = openpgp.contains_secret_key(data)
    report = [_certificate_report(cert, has_secret, at, policy) for cert in certificates]
    return json_output(report) if args.json else _render_certificates(report)


def _certificate_report(
    cert: openpgp.Certificate, has_secret: bool, at: _dt.datetime, policy: Policy
) -> dict[str, Any]:
    problems = cert.policy_problems(policy, at)
    return {
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


def _jwk_report(key: jose.JwkKey, at: _dt.datetime, policy: Policy) -> dict[str, Any]:
    # The keystore's own check, so inspect agrees with what an import would refuse.
    problems = key.policy_problems(policy, at)
    return {
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


def _render_jwks(report: list[dict[str, Any]]) -> bytes:
    lines = []
    for item in report:
        kind = "private JWK" if item["private"] else "public JWK"
        expires = str(item["expires"] or "never")[:10]
        lines.append(
            f"{kind} kid {item['kid']}  RSA {item['bits']}  alg {item['alg'] or 'any'}"
            f"  expires {expires}"
        )
        lines.append(f"  policy   {_verdict(item['policy'])}")
    return printable_lines(lines)


def _render_certificates(report: list[dict[str, Any]]) -> bytes:
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
        lines.append(f"  policy   {_verdict(cert['policy'])}")
    return printable_lines(lines)


def _verdict(policy: dict[str, Any]) -> str:
    return "ok" if policy["ok"] else "NOT OK: " + "; ".join(policy["problems"])
