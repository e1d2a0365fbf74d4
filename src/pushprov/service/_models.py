"""Request and response bodies; the OpenAPI document at /openapi.json is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "CardIn",
    "ErrorResponse",
    "GopcRequest",
    "GopcResponse",
    "KeyState",
    "KeysResponse",
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
