"""RFC 7512 ``pkcs11:`` URIs: which module, which token, which object, where the PIN lives."""

from __future__ import annotations

import dataclasses
import os
import re
import urllib.parse
from pathlib import Path

from .._errors import PassphraseError, UsageError

__all__ = ["Pkcs11Uri", "parse_uri", "read_pin"]

# The path attributes we use, and those we accept and ignore (a vendor's tool writes them).
_PATH_USED = frozenset({"token", "serial", "slot-id", "object", "id", "type"})
_PATH_IGNORED = frozenset(
    {"manufacturer", "model", "library-manufacturer", "library-description", "library-version"}
    | {"slot-description", "slot-manufacturer"}
)
_QUERY_USED = frozenset({"module-path", "pin-source"})
_QUERY_IGNORED = frozenset({"module-name"})
_TYPES = frozenset({"private", "public", "cert", "secret-key", "data"})
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_PIN_BYTES = 256


@dataclasses.dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a ``pkcs11:`` URI pushprov acts on; never a PIN value (only its source)."""

    token: str | None = None
    serial: str | None = None
    slot_id: int | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    module_path: str | None = None
    pin_source: str | None = None

    def __str__(self) -> str:
        path = [
            f"{name}={_quote(value)}"
            for name, value in (
                ("token", self.token),
                ("serial", self.serial),
                ("slot-id", None if self.slot_id is None else str(self.slot_id)),
                ("object", self.object),
                ("id", None if self.id is None else self.id),
                ("type", self.type),
            )
            if value is not None
        ]
        query = [
            f"{name}={_quote(value)}"
            for name, value in (("module-path", self.module_path), ("pin-source", self.pin_source))
            if value is not None
        ]
        return "pkcs11:" + ";".join(path) + ("?" + "&".join(query) if query else "")


def _quote(value: str | bytes) -> str:
    return urllib.parse.quote(value, safe="/:-._~" if isinstance(value, str) else "")


def parse_uri(text: str) -> Pkcs11Uri:
    """Parse ``pkcs11:path?query`` (RFC 7512 §2.3); a ``pin-value`` is refused.

    A PIN written into a URI ends up in shell history, process lists and configuration dumps:
    the PIN comes from ``pin-source`` (``file:/path`` or ``env:NAME``) or the caller instead.
    """
    if not text.startswith("pkcs11:"):
        raise UsageError('a token key is named by a "pkcs11:" URI (RFC 7512)')
    path, _, query = text[len("pkcs11:") :].partition("?")
    found: dict[str, bytes] = {}
    for part, separator, used, ignored in (
        (path, ";", _PATH_USED, _PATH_IGNORED),
        (query, "&", _QUERY_USED, _QUERY_IGNORED),
    ):
        for item in filter(None, part.split(separator)):
            name, equals, value = item.partition("=")
            if name == "pin-value":
                raise UsageError("a PIN may not be written in a pkcs11: URI; use pin-source")
            if not equals:
                raise UsageError(f'the pkcs11: URI attribute "{_shown(name)}" has no value')
            if name in found:
                raise UsageError(f'the pkcs11: URI names "{_shown(name)}" twice')
            if name in ignored or name.startswith("x-"):
                continue
            if name not in used:
                raise UsageError(f'the pkcs11: URI attribute "{_shown(name)}" is not supported')
            found[name] = urllib.parse.unquote_to_bytes(value)
    text_of = {name: _utf8(name, raw) for name, raw in found.items() if name != "id"}
    slot = text_of.get("slot-id")
    if slot is not None and not slot.isdigit():
        raise UsageError('the pkcs11: URI "slot-id" must be a number')
    kind = text_of.get("type")
    if kind is not None and kind not in _TYPES:
        raise UsageError('the pkcs11: URI "type" must be private, public, cert, secret-key or data')
    return Pkcs11Uri(
        token=text_of.get("token"),
        serial=text_of.get("serial"),
        slot_id=None if slot is None else int(slot),
        object=text_of.get("object"),
        id=found.get("id"),
        type=kind,
        module_path=text_of.get("module-path"),
        pin_source=text_of.get("pin-source"),
    )


def _utf8(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f'the pkcs11: URI "{name}" is not UTF-8') from None


def _shown(name: str) -> str:
    # Attribute names only, and only tame ones: a URI's values never reach a message.
    return name if re.fullmatch(r"[a-z0-9-]{1,40}", name) else "?"


def read_pin(source: str) -> bytes:
    """The PIN from ``file:/path`` (first line, as written) or ``env:NAME``.

    A missing or empty source is a ``PassphraseError``, as a missing store passphrase is.
    """
    scheme, _, where = source.partition(":")
    if scheme == "env" and _ENV_NAME.fullmatch(where):
        value = os.environb.get(where.encode())
        if not value:
            raise PassphraseError(f"the token PIN variable {where} is not set")
        return value
    if scheme == "file" and where:
        path = Path(urllib.parse.unquote(where.removeprefix("//")))
        try:
            with path.open("rb") as handle:
                data = handle.read(_MAX_PIN_BYTES + 1)
        except OSError:
            raise PassphraseError("the token PIN file cannot be read") from None
        pin = data.split(b"\n", 1)[0].rstrip(b"\r")
        if not pin or len(pin) > _MAX_PIN_BYTES:
            raise PassphraseError("the token PIN file holds no PIN on its first line")
        return pin
    raise UsageError('a PIN source is "file:/path" or "env:NAME"')
