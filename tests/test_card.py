"""The GOPC model: strict schema, documented member order, a PAN that never shows itself."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from pushprov import GOOGLE_PROFILE, Card, Gopc, GopcInvalidError, Pan, SessionMismatchError
from pushprov._card import parse_strict_json

VISA_TEST = "4111111111111111"  # the well-known Visa test number (Luhn-valid)


def card_json(**overrides: object) -> str:
    document: dict[str, object] = {
        "accountNumber": VISA_TEST,
        "expiryMonth": "12",
        "expiryYear": "29",
    }
    document.update(overrides)
    return json.dumps(document)


def test_gopc_json_is_compact_and_in_documented_order() -> None:
    gopc = Gopc(server_session_id="sess-1", card=Card.from_json(card_json()))
    assert gopc.to_json() == (
        b'{"protocolHeader":{"version":1},"validationContext":{"serverSessionId":"sess-1"},'
        b'"paymentCard":{"accountNumber":"4111111111111111","expiryMonth":"12","expiryYear":"29"}}'
    )
    assert Gopc.from_json(gopc.to_json()) == gopc


@pytest.mark.parametrize(
    "digits",
    ["4111111111111112", "41111111111", "41111111111111111111", "4111-1111-1111-1111", "٤١١١"],
)
def test_bad_account_numbers_are_refused_without_echoing_them(digits: str) -> None:
    with pytest.raises(GopcInvalidError) as info:
        Pan(digits)
    assert digits not in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("expiryMonth", "13"), ("expiryMonth", "1"), ("expiryYear", "2029"), ("expiryYear", 29)],
)
def test_expiry_format_is_strict(field: str, value: object) -> None:
    with pytest.raises(GopcInvalidError):
        Card.from_json(card_json(**{field: value}))


def test_unknown_and_duplicate_members_are_refused() -> None:
    with pytest.raises(GopcInvalidError, match="unknown members: cvc"):
        Card.from_json(card_json(cvc="123"))
    with pytest.raises(GopcInvalidError, match="duplicate"):
        Card.from_json(
            '{"accountNumber":"1","accountNumber":"4111111111111111",'
            '"expiryMonth":"12","expiryYear":"29"}'
        )
    with pytest.raises(GopcInvalidError):
        parse_strict_json('{"a": NaN}', what="x")


def test_hostile_member_name_is_not_echoed() -> None:
    with pytest.raises(GopcInvalidError) as info:
        Card.from_json(card_json(**{"5555555555554444": "x"}))
    assert "5555555555554444" not in str(info.value)


def test_session_id_rules() -> None:
    card = Card.from_json(card_json())
    for bad in ["", "tab\there", "é", "x" * (64 * 1024 + 1)]:
        with pytest.raises(GopcInvalidError):
            Gopc(server_session_id=bad, card=card)
    # The length limit is the policy's, applied where a policy is in hand.
    long_id = json.loads(Gopc(server_session_id="x" * 2000, card=card).to_json())
    with pytest.raises(GopcInvalidError, match="too long"):
        Gopc.from_json(json.dumps(long_id))
    lax = dataclasses.replace(GOOGLE_PROFILE, max_session_id_length=4096)
    assert Gopc.from_json(json.dumps(long_id), policy=lax).server_session_id == "x" * 2000
    gopc = Gopc(server_session_id="abc", card=card)
    gopc.check_session("abc")
    with pytest.raises(SessionMismatchError):
        gopc.check_session("abd")


def test_version_must_be_one() -> None:
    document = json.loads(Gopc(server_session_id="s", card=Card.from_json(card_json())).to_json())
    document["protocolHeader"]["version"] = 2
    with pytest.raises(GopcInvalidError):
        Gopc.from_json(json.dumps(document))
    document["protocolHeader"]["version"] = True
    with pytest.raises(GopcInvalidError):
        Gopc.from_json(json.dumps(document))


def test_pan_masks_itself_everywhere() -> None:
    pan = Pan(VISA_TEST)
    card = Card(account_number=pan, expiry_month="01", expiry_year="30")
    gopc = Gopc(server_session_id="s", card=card)
    for text in (repr(pan), str(pan), repr(card), repr(gopc), f"{pan}", f"{gopc!r}"):
        assert VISA_TEST not in text
        assert "411111******1111" in text
    assert Pan("411111111117").masked == "********1117"  # short PANs keep no BIN
    with pytest.raises(TypeError):
        pickle.dumps(pan)
    with pytest.raises(TypeError):
        hash(pan)
    assert pan == Pan(VISA_TEST)
    assert pan.reveal() == VISA_TEST
