"""``pushprov demo``: the whole flow in one process, on throwaway sandbox keys.

An issuer and a stand-in for Google each get a key; the issuer seals a GOPC for a random test
card; "Google" opens it exactly as the sandbox would and a masked summary is printed.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import secrets
import time
from typing import BinaryIO

from .. import _api, openpgp
from .._card import Card, Gopc, Pan
from .._errors import PushprovError
from ._options import Subparsers

__all__ = ["random_test_pan", "register", "run_demo"]


def register(commands: Subparsers) -> None:
    demo = commands.add_parser(
        "demo",
        help="end-to-end demo on throwaway sandbox keys (issuer and stand-in Google)",
    )
    demo.set_defaults(handler=_demo)


def _demo(_: argparse.Namespace, at: _dt.datetime, _stdin: BinaryIO) -> bytes:
    return run_demo(at)


def random_test_pan(prefix: str = "400000", length: int = 16) -> Pan:
    """A Luhn-valid number in a test range, so no fixed card number ships in the code."""
    body = prefix + "".join(secrets.choice("0123456789") for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        try:
            return Pan(body + check)
        except PushprovError:
            continue
    raise AssertionError("unreachable: exactly one check digit fits")


def run_demo(at: _dt.datetime) -> bytes:
    lines = []
    started = time.perf_counter()
    issuer = openpgp.generate_key("Demo Issuer <ops@issuer.example>", at=at)
    google = openpgp.generate_key("Stand-in Google sandbox <sandbox@google.example>", at=at)
    lines.append(f"issuer key   {issuer.fingerprint} (RSA 3072, [CS] + [E], expires in 1 year)")
    lines.append(f"google key   {google.fingerprint} (stand-in, sandbox)")
    keygen = time.perf_counter() - started

    session_id = secrets.token_urlsafe(24)
    card = Card(account_number=random_test_pan(), expiry_month="12", expiry_year="29")
    gopc = Gopc(server_session_id=session_id, card=card)
    started = time.perf_counter()
    sealed = _api.seal_gopc(gopc, sign_with=[issuer], encrypt_to=[google.certificate], at=at)
    sealing = time.perf_counter() - started
    lines.append(f"sealed GOPC  {len(sealed)} bytes of base64, signed SHA-384, AES-256")

    started = time.perf_counter()
    opened = _api.open_gopc(
        sealed,
        session_id=session_id,
        decrypt_with=[google],
        verify_with=[issuer.certificate],
        at=at,
    )
    opening = time.perf_counter() - started
    signature = opened.envelope.signatures[0]
    lines.append(
        f"opened       card {opened.gopc.card.account_number.masked} "
        f"exp {opened.gopc.card.expiry_month}/{opened.gopc.card.expiry_year}, "
        f"session id matches, signed by {signature.certificate} ({signature.hash_algorithm}), "
        f"cipher {opened.envelope.cipher}"
    )
    lines.append(
        f"timings      keygen {keygen * 1000:.0f} ms, seal {sealing * 1000:.1f} ms, "
        f"open {opening * 1000:.1f} ms"
    )
    lines.append("demo ok")
    return ("\n".join(lines) + "\n").encode()
