"""A canary card number pushed through every success and error path must surface nowhere:
not in log records, exception text or tracebacks, reprs, or a process's stderr."""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest

from pushprov import (
    GOOGLE_PROFILE,
    Card,
    Gopc,
    Pan,
    PushprovError,
    open_gopc,
    seal_gopc,
)
from pushprov.cli._demo import random_test_pan

from . import craft
from .conftest import T0, Keys

CANARY = random_test_pan("400000", 16).reveal()
CANARY_GROUPS = (CANARY, CANARY[6:], " ".join(CANARY[i : i + 4] for i in range(0, 16, 4)))


def _assert_clean(text: str) -> None:
    for form in CANARY_GROUPS:
        assert form not in text


def _card() -> Card:
    return Card(account_number=Pan(CANARY), expiry_month="07", expiry_year="31")


def _card_json(**overrides: object) -> bytes:
    document: dict[str, object] = {"accountNumber": CANARY, "expiryMonth": "07", "expiryYear": "31"}
    document.update(overrides)
    return json.dumps(document).encode()


def _scenarios(keys: Keys) -> dict[str, Callable[[], object]]:
    gopc = Gopc(server_session_id="canary-session", card=_card())
    sealed = seal_gopc(
        gopc, sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
    )
    weak = dataclasses.replace(
        GOOGLE_PROFILE, signing_hash="SHA1", signature_hashes=frozenset({"SHA1"})
    )

    def opener(
        message: bytes, session: str = "canary-session", **kwargs: object
    ) -> Callable[[], object]:
        options: dict[str, object] = {
            "session_id": session,
            "decrypt_with": [keys.google_1],
            "verify_with": [keys.issuer_a.certificate],
            "at": T0,
        }
        options.update(kwargs)
        return lambda: open_gopc(message, **options)  # type: ignore[arg-type]

    unsigned = craft.encrypt_packets(craft.literal(gopc.to_json()), [keys.google_1.certificate])
    bad_json_inside = craft.encrypt_packets(
        craft.literal(gopc.to_json()[:-5]), [keys.google_1.certificate]
    )
    return {
        "seal ok": lambda: seal_gopc(
            gopc, sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0
        ),
        "open ok": opener(sealed),
        "session mismatch": opener(sealed, session="other"),
        "not for us": opener(sealed, decrypt_with=[keys.google_2]),
        "unknown signer": opener(sealed, verify_with=[keys.issuer_b.certificate]),
        "tampered": opener(sealed[:-8] + b"AAAAAAA="),
        "weak hash": opener(
            seal_gopc(
                gopc,
                sign_with=[keys.issuer_a],
                encrypt_to=[keys.google_1.certificate],
                at=T0,
                policy=weak,
            )
        ),
        "unsigned": opener(unsigned),
        "garbled json inside": opener(bad_json_inside),
        "expired": opener(sealed, at=T0.replace(year=2029)),
        "bad luhn": lambda: Pan(CANARY[:-1] + str((int(CANARY[-1]) + 1) % 10)),
        "bad expiry": lambda: Card.from_json(_card_json(expiryMonth="13")),
        "unknown member": lambda: Card.from_json(_card_json(extra=CANARY)),
        "member named like a PAN": lambda: Card.from_json(_card_json(**{CANARY: 1})),
        "duplicate member": lambda: Card.from_json(
            _card_json()[:-1] + b', "accountNumber": "' + CANARY.encode() + b'"}'
        ),
        "broken json": lambda: Card.from_json(_card_json()[:-3]),
        "wrong type": lambda: Card.from_json(_card_json(accountNumber=int(CANARY))),
        "too long": lambda: Pan(CANARY + "0000"),
        "session id with PAN too long": lambda: seal_gopc(
            Gopc(server_session_id=CANARY * 100, card=_card()),
            sign_with=[keys.issuer_a],
            encrypt_to=[keys.google_1.certificate],
            at=T0,
        ),
        "armor kind like a PAN": lambda: open_gopc(
            b"-----BEGIN PGP "
            + CANARY.encode()
            + b"-----\n\nAAAA\n-----END PGP "
            + CANARY.encode()
            + b"-----\n",
            session_id="canary-session",
            decrypt_with=[keys.google_1],
            verify_with=[keys.issuer_a.certificate],
            at=T0,
        ),
    }


def test_canary_appears_nowhere_in_process(keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outcomes = {}
    for name, action in _scenarios(keys).items():
        try:
            result = action()
        except PushprovError as error:
            outcomes[name] = error.code
            _assert_clean(str(error))
            _assert_clean(repr(error))
            _assert_clean("".join(traceback.format_exception(error)))
            _assert_clean(repr(error.args))
        else:
            outcomes[name] = "ok"
            if not isinstance(result, bytes):
                _assert_clean(repr(result))
                _assert_clean(str(result))
    for record in caplog.records:
        _assert_clean(record.getMessage())
    # Every path really ran: the two successes succeeded and every other one failed.
    assert outcomes["seal ok"] == outcomes["open ok"] == "ok"
    assert list(outcomes.values()).count("ok") == 2, outcomes


def test_canary_appears_nowhere_on_cli_stderr(keys: Keys, tmp_path: Path) -> None:
    (tmp_path / "issuer.sec").write_text(keys.issuer_a.armor())
    (tmp_path / "issuer.pub").write_text(keys.issuer_a.certificate.armor())
    (tmp_path / "google.sec").write_text(keys.google_1.armor())
    (tmp_path / "google.pub").write_text(keys.google_1.certificate.armor())
    (tmp_path / "other.pub").write_text(keys.google_2.certificate.armor())

    def run(stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "pushprov", *args, "--at", "2026-11-01T13:00:00Z"],
            input=stdin, capture_output=True, cwd=tmp_path, check=False, timeout=60,
        )  # fmt: skip

    seal_args = ("gopc", "seal", "--session-id", "s", "--sign-with", "issuer.sec")
    open_args = ("gopc", "open", "--decrypt-with", "google.sec", "--verify-with", "issuer.pub")
    sealed = run(_card_json(), *seal_args, "--encrypt-to", "google.pub")
    assert sealed.returncode == 0
    not_ours = run(_card_json(), *seal_args, "--encrypt-to", "other.pub").stdout
    results = [
        run(_card_json(expiryMonth="13"), *seal_args, "--encrypt-to", "google.pub"),
        run(_card_json(bogus=CANARY), *seal_args, "--encrypt-to", "google.pub"),
        run(_card_json()[:-2], *seal_args, "--encrypt-to", "google.pub"),
        run(sealed.stdout, *open_args, "--session-id", "wrong"),
        run(not_ours, *open_args, "--session-id", "s"),
        run(sealed.stdout, *open_args, "--session-id", "s", "--masked"),
    ]
    assert [r.returncode for r in results] == [11, 11, 11, 12, 5, 0]
    for result in results:
        _assert_clean(result.stderr.decode())
    _assert_clean(results[-1].stdout.decode())
