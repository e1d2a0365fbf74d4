"""SOP's failure modes (draft-dkg-openpgp-stateless-cli, "Failure Modes"): one exit code each."""

from __future__ import annotations

import enum

__all__ = ["SopError", "SopFailure"]


class SopFailure(enum.IntEnum):
    """The exit codes, as the draft numbers them (checked against pgpainless-cli's own table)."""

    GENERIC = 1
    NO_SIGNATURE = 3
    UNSUPPORTED_ASYMMETRIC_ALGO = 13
    CERT_CANNOT_ENCRYPT = 17
    MISSING_ARG = 19
    INCOMPLETE_VERIFICATION = 23
    CANNOT_DECRYPT = 29
    PASSWORD_NOT_HUMAN_READABLE = 31
    UNSUPPORTED_OPTION = 37
    BAD_DATA = 41
    EXPECTED_TEXT = 53
    OUTPUT_EXISTS = 59
    MISSING_INPUT = 61
    KEY_IS_PROTECTED = 67
    UNSUPPORTED_SUBCOMMAND = 69
    UNSUPPORTED_SPECIAL_PREFIX = 71
    AMBIGUOUS_INPUT = 73
    KEY_CANNOT_SIGN = 79
    INCOMPATIBLE_OPTIONS = 83
    UNSUPPORTED_PROFILE = 89


class SopError(Exception):
    """A refusal with its SOP exit code. The message names no input data (no key, no plaintext)."""

    def __init__(self, failure: SopFailure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message

    def __str__(self) -> str:
        return f"{self.failure.name}: {self.message}"
