"""The Google Opaque Payment Card: a strict model that never shows the card number by accident."""

from __future__ import annotations

import dataclasses
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from . import _json
from ._errors import GopcInvalidError, SessionMismatchError
from ._policy import GOOGLE_PROFILE, Policy

__all__ = ["Card", "Gopc", "Pan", "parse_strict_json"]

_IDENT = re.compile(r"[A-Za-z_]{1,40}")
_MONTHS = frozenset(f"{m:02d}" for m in range(1, 13))


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


class Pan:
    """A primary account number: ``str``/``repr`` show BIN + last four at most.

    ``reveal()`` gives the digits. Not picklable, not hashable: it cannot slip into a cache key
    or a queue by accident.
    """

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        if not isinstance(digits, str) or not (12 <= len(digits) <= 19) or not digits.isascii():
            raise GopcInvalidError("accountNumber must be 12 to 19 digits")
        if not digits.isdigit():
            raise GopcInvalidError("accountNumber must be 12 to 19 digits")
        if not _luhn_ok(digits):
            raise GopcInvalidError("accountNumber fails the Luhn check")
        self._digits = digits

    def reveal(self) -> str:
        """The clear card number. Call only where it leaves for the sealed payload."""
        return self._digits

    @property
    def masked(self) -> str:
        digits = self._digits
        head = digits[:6] if len(digits) >= 16 else ""
        return head + "*" * (len(digits) - len(head) - 4) + digits[-4:]

    def __repr__(self) -> str:
        return f"Pan({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pan):
            return NotImplemented
        return hmac.compare_digest(self._digits, other._digits)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Pan cannot be pickled")


@dataclasses.dataclass(frozen=True)
class Card:
    """Card data as the issuer's backend hands it over: PAN and expiry (``MM``, ``YY``)."""

    account_number: Pan
    expiry_month: str
    expiry_year: str

    def __post_init__(self) -> None:
        if not isinstance(self.account_number, Pan):
            raise TypeError("account_number must be a Pan")
        if not isinstance(self.expiry_month, str) or self.expiry_month not in _MONTHS:
            raise GopcInvalidError('expiryMonth must be "01" to "12"')
        year = self.expiry_year
        if not isinstance(year, str) or len(year) != 2 or not (year.isascii() and year.isdigit()):
            raise GopcInvalidError("expiryYear must be two digits")

    @classmethod
    def from_json(cls, data: bytes | str) -> Card:
        """``{"accountNumber": "...", "expiryMonth": "MM", "expiryYear": "YY"}``, nothing else."""
        obj = parse_strict_json(data, what="card")
        return cls._from_mapping(obj)

    @classmethod
    def _from_mapping(cls, obj: object) -> Card:
        fields = _exact_object(obj, ("accountNumber", "expiryMonth", "expiryYear"), "paymentCard")
        return cls(
            account_number=Pan(_string(fields, "accountNumber")),
            expiry_month=_string(fields, "expiryMonth"),
            expiry_year=_string(fields, "expiryYear"),
        )


@dataclasses.dataclass(frozen=True)
class Gopc:
    """A Google Opaque Payment Card before sealing (or after opening)."""

    server_session_id: str
    card: Card
    version: int = 1

    def __post_init__(self) -> None:
        # Structure only; the policy's length limit applies where a policy is in hand
        # (``from_json``, sealing).
        check_session_id(self.server_session_id, None)
        if self.version != 1:
            raise GopcInvalidError("protocolHeader.version must be 1")

    def to_json(self) -> bytes:
        """Compact JSON in the member order of Google's documentation. Holds the clear PAN."""
        document = {
            "protocolHeader": {"version": self.version},
            "validationContext": {"serverSessionId": self.server_session_id},
            "paymentCard": {
                "accountNumber": self.card.account_number.reveal(),
                "expiryMonth": self.card.expiry_month,
                "expiryYear": self.card.expiry_year,
            },
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str, *, policy: Policy = GOOGLE_PROFILE) -> Gopc:
        obj = parse_strict_json(data, what="GOPC")
        top = _exact_object(obj, ("protocolHeader", "validationContext", "paymentCard"), "GOPC")
        header = _exact_object(top["protocolHeader"], ("version",), "protocolHeader")
        version = header["version"]
        if type(version) is not int or version != 1:
            raise GopcInvalidError("protocolHeader.version must be 1")
        context = _exact_object(top["validationContext"], ("serverSessionId",), "validationContext")
        session_id = _string(context, "serverSessionId")
        check_session_id(session_id, policy)
        return cls(server_session_id=session_id, card=Card._from_mapping(top["paymentCard"]))

    def check_session(self, expected: str) -> None:
        """Raise SessionMismatchError unless this GOPC carries ``expected``."""
        if not hmac.compare_digest(self.server_session_id.encode(), expected.encode()):
            raise SessionMismatchError("the GOPC carries another serverSessionId")


_MAX_SESSION_ID = 64 * 1024  # a structural bound whatever the policy


def check_session_id(session_id: object, policy: Policy | None) -> None:
    if not isinstance(session_id, str) or not session_id:
        raise GopcInvalidError("serverSessionId must be a non-empty string")
    limit = _MAX_SESSION_ID if policy is None else policy.max_session_id_length
    if len(session_id) > limit:
        raise GopcInvalidError("serverSessionId is too long")
    if not (session_id.isascii() and session_id.isprintable()):
        raise GopcInvalidError("serverSessionId must be printable ASCII")


def parse_strict_json(data: bytes | str, *, what: str) -> Any:
    """JSON with duplicate members, NaN/Infinity and invalid UTF-8 refused (GopcInvalidError)."""
    return _json.parse_strict_json(data, what=what, error=GopcInvalidError)


def _exact_object(obj: object, names: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise GopcInvalidError(f"{where} must be a JSON object")
    missing = [name for name in names if name not in obj]
    if missing:
        raise GopcInvalidError(f"{where} lacks {', '.join(missing)}")
    unknown = sorted(set(obj) - set(names))
    if unknown:
        # A hostile member name could itself be a card number: name only plain identifiers.
        shown = ", ".join(n if _IDENT.fullmatch(n) else "<other>" for n in unknown[:5])
        raise GopcInvalidError(f"{where} has unknown members: {shown}")
    return obj


def _string(fields: Mapping[str, Any], name: str) -> str:
    value = fields[name]
    if not isinstance(value, str):
        raise GopcInvalidError(f"{name} must be a string")
    return value
