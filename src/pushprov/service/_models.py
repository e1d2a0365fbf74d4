"""Request and response bodies; the OpenAPI document at /openapi.json is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = [
    "CardIn",
    "ErrorResponse",
    "GopcRequest",
    "GopcResponse",
    "KeyState",
    "KeysResponse",
    "OutcomeItem",
    "OutcomeReport",
    "OutcomesRequest",
    "OutcomesResponse",
    "PublicKeysResponse",
    "RequestHeader",
    "ResponseHeader",
]

REQUEST_ID_PATTERN = r"^[A-Za-z0-9:_-]{1,100}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False, hide_input_in_errors=True)


class RequestHeader(_Strict):
    requestId: str = Field(pattern=REQUEST_ID_PATTERN, description="At most 100 of [A-Za-z0-9:_-]")
    requestTimestamp: str = Field(
        pattern=r"^[0-9]{1,15}$", description="Epoch milliseconds; must be within ±60 s"
    )


class ResponseHeader(BaseModel):
    responseTimestamp: str = Field(description="Epoch milliseconds")
    requestId: str | None = None


class CardIn(_Strict):
    # SecretStr keeps the number out of reprs and validation errors.
    accountNumber: SecretStr = Field(
        description="12 to 19 digits, Luhn-valid",
        json_schema_extra={"pattern": "^[0-9]{12,19}$"},
    )
    expiryMonth: str = Field(pattern=r"^(0[1-9]|1[0-2])$")
    expiryYear: str = Field(pattern=r"^[0-9]{2}$")


class GopcRequest(_Strict):
    requestHeader: RequestHeader
    serverSessionId: str = Field(min_length=1, max_length=1024, pattern=r"^[ -~]+$")
    card: CardIn
    encoding: Literal["base64", "base64url"] | None = Field(
        default=None, description="pgp only; default base64 (RFC 4648 §4)"
    )
    format: Literal["pgp", "jwe"] | None = Field(
        default=None, description="envelope; default from the service configuration"
    )


class GopcResponse(BaseModel):
    responseHeader: ResponseHeader
    googleOpaquePaymentCard: str


class ErrorResponse(BaseModel):
    responseHeader: ResponseHeader
    errorResponseCode: str
    errorDescription: str


class PublicKeysResponse(BaseModel):
    format: Literal["pgp", "jwe"]
    keys: list[str] = Field(description="armored OpenPGP certificates, or public JWKs as JSON")


class KeyState(BaseModel):
    id: str
    format: str
    owner: str
    roles: list[str]
    state: str
    expires: str | None
    daysToExpiry: float | None


class KeysResponse(BaseModel):
    version: str
    keys: list[KeyState]


#: The most outcomes one report may carry (the transport's body cap bounds it too).
MAX_OUTCOMES = 500


class OutcomeItem(_Strict):
    requestId: str = Field(pattern=REQUEST_ID_PATTERN, description="as sent to /v1/gopc")
    outcome: Literal["accepted", "rejected"]
    errorCode: str | None = Field(
        default=None,
        pattern=r"^[A-Z0-9_]{1,64}$",
        description="Google's error code as the app saw it (rejected only)",
    )

    @model_validator(mode="after")
    def _code_goes_with_a_rejection(self) -> OutcomeItem:
        if self.outcome == "accepted" and self.errorCode is not None:
            raise ValueError("errorCode goes with a rejection")
        return self


class OutcomesRequest(_Strict):
    outcomes: list[OutcomeItem] = Field(min_length=1, max_length=MAX_OUTCOMES)


class OutcomeReport(BaseModel):
    requestId: str
    result: Literal["recorded", "duplicate", "conflicting", "late", "unknown", "refused"]
    canary: list[str] = Field(description="roles this GOPC was a canary for (recorded only)")


class OutcomesResponse(BaseModel):
    results: list[OutcomeReport]
    counts: dict[str, int]
