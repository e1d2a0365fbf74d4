"""Card-number hygiene at the edge (issue 14, finding 7): errors never echo the request's member
names or values, and the log net masks a PAN whatever separates its digits."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator

import pytest

from pushprov import openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import FileKeySource
from pushprov.service import JsonFormatter, redact

from .service_support import Server, request_body, running_server

NOW = dt.datetime.now(dt.UTC)
CANARY = random_test_pan("401288").reveal()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ours = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    google = openpgp.generate_key("g <g@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[ours], recipients=[google.certificate])
    with running_server(tmp_path_factory.mktemp("hygiene"), source) as srv:
        yield srv


def _grouped(pan: str, separator: str) -> str:
    return separator.join(pan[i : i + 4] for i in range(0, len(pan), 4))


@pytest.mark.parametrize(
    "where",
    [
        lambda body: body["card"].update({CANARY: "x"}),
        lambda body: body.update({CANARY: 1}),
        lambda body: body["requestHeader"].update({CANARY: "x"}),
        lambda body: body["card"].update({"pan" + CANARY: "x"}),
        lambda body: body["card"].update({_grouped(CANARY, ":"): "x"}),
        lambda body: body.update(card={CANARY: {CANARY: CANARY}}),
        lambda body: body.update(card=[CANARY]),
    ],
    ids=["card member", "top member", "header member", "prefixed", "colons", "nested", "list"],
)
def test_an_unknown_member_is_not_echoed_into_the_error(server: Server, where: object) -> None:
    body = request_body(random_test_pan().reveal(), request_id="hygiene-1")
    where(body)  # type: ignore[operator]
    with server.client() as client:
        answer = client.post("/v1/gopc", json=body)
    assert answer.status_code == 400
    description = answer.json()["errorDescription"]
    assert description.startswith("invalid or missing: ")
    digits = "".join(c for c in answer.text if c.isdigit())
    assert CANARY not in digits and CANARY[6:] not in answer.text
    assert CANARY[-4:] not in description


def test_the_error_names_the_known_path_of_an_unknown_member(server: Server) -> None:
    body = request_body(random_test_pan().reveal(), request_id="hygiene-2")
    body["card"][CANARY] = "x"
    with server.client() as client:
        answer = client.post("/v1/gopc", json=body)
    assert answer.json()["errorDescription"] == "invalid or missing: card (unknown member)"


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


@pytest.mark.parametrize("separator", [":", "-", "_", " ", ".", "/", " - ", "::"])
def test_the_log_net_masks_a_pan_split_by_any_separator(separator: str) -> None:
    split = _grouped(CANARY, separator)
    assert redact(f"requestId {split} seen") == f"requestId [PAN {CANARY[-4:]}] seen"
    uneven = separator.join((CANARY[:1], CANARY[1:9], CANARY[9:]))  # not groups of four
    assert redact(uneven) == f"[PAN {CANARY[-4:]}]"
    # Stray digit groups beside it do not hide it (they may be masked with it).
    before, after = f"7{separator}", f"{separator}9"
    for text in (before + split, split + after, before + split + after):
        masked = redact(text)
        assert "[PAN " in masked and CANARY[:-4] not in _digits(masked), masked


def test_the_log_net_leaves_numbers_that_are_not_cards() -> None:
    not_luhn = CANARY[:-1] + str((int(CANARY[-1]) + 1) % 10)
    for text in (
        f"order {not_luhn} refused",
        "2026-12-03T10:35:08.123Z",
        "latency 12.5 ms, 1795943876000 ms",
        CANARY + "123456",  # 22 digits in one group: a number, not a card
    ):
        assert redact(text) == text


def test_a_request_id_made_of_a_pan_and_colons_is_masked_in_the_access_log(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    request_id = _grouped(CANARY, ":")  # what requestId's pattern allows
    caplog.set_level(logging.INFO, logger="pushprov.service")
    with server.client() as client:
        answer = client.post("/v1/gopc", json=request_body(CANARY, request_id=request_id))
    assert answer.status_code == 200
    # The access line is written after the answer has gone out (the server runs in a thread),
    # so it may land a moment after the client has its 200.
    deadline = time.monotonic() + 10
    while not any(getattr(r, "route", None) == "/v1/gopc" for r in caplog.records):
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.01)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    logged = [json.loads(line) for line in lines if "[PAN " in line]
    assert any(line.get("request_id") == f"[PAN {CANARY[-4:]}]" for line in logged)
    for line in lines:
        assert CANARY not in "".join(c for c in line if c.isdigit())
