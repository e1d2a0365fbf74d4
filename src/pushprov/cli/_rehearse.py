"""``pushprov rehearse``: the issuer service and the sandbox on loopback, traffic through a
rotation of both keys (``_rehearsal`` runs it; imported only then, with its HTTP client)."""

from __future__ import annotations

import argparse
import datetime as _dt
from typing import BinaryIO

from ._options import Subparsers

__all__ = ["register"]


def register(commands: Subparsers) -> None:
    rehearse = commands.add_parser(
        "rehearse",
        help="the main job: issuer service + sandbox on loopback, traffic through a rotation "
        "of both keys; exit 1 if any GOPC failed",
    )
    rehearse.add_argument(
        "--bits", type=int, default=2048, help="RSA size for the rehearsal's keys"
    )
    rehearse.add_argument(
        "--step-seconds", type=float, default=1.5, help="traffic time between rotation steps"
    )
    rehearse.add_argument(
        "--fault",
        choices=("sandbox-forgets-issuer-key",),
        help="inject a fault: the sandbox never trusts the issuer's new key; the canary must "
        "catch it with no GOPC outside the canary failing",
    )
    rehearse.add_argument(
        "--hsm",
        action="store_true",
        help="the issuer's new signing key (Issuer-B) is made in a throwaway SoftHSM2 token, "
        "so the rotation moves the role from a software key into the HSM (needs softhsm2)",
    )
    rehearse.set_defaults(handler=_rehearse)


def _rehearse(args: argparse.Namespace, _at: _dt.datetime, _: BinaryIO) -> tuple[bytes, int]:
    from ._rehearsal import run_rehearsal

    # The report goes out whatever the verdict; the status carries the verdict.
    return run_rehearsal(
        bits=args.bits, step_seconds=args.step_seconds, fault=args.fault, hsm=args.hsm
    )
