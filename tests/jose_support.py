"""Shared material for the JOSE tests (no tests here): keys, times, vectors, a canary GOPC."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path
from typing import Any

from pushprov._card import Card, Gopc, Pan
from pushprov.jose import JwkKey, generate_jwk
from pushprov.jose._cek import wrap_cek
from pushprov.jose._compact import b64u_decode, b64u_encode, encode_header
from pushprov.jose._content import cek_bytes, encrypt_content, iv_bytes

VECTORS = Path(__file__).resolve().parent / "vectors"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
CANARY_PAN = "4927361873506198"  # Luhn-valid, used nowhere else: any sighting is a leak

PROFILE_CELLS = [
    (alg, enc, compress)
    for alg in ("RSA-OAEP-256", "RSA1_5")
    for enc in ("A256GCM", "A128CBC-HS256")
    for compress in (False, True)
]


@functools.cache
def fixed_key(name: str, *, use: str | None = None, alg: str | None = None) -> JwkKey:
    """A 2048-bit key per name, generated once per session (3072 costs seconds each)."""
    return generate_jwk(bits=2048, at=NOW, use=use, alg=alg, kid=name)


def cell_recipient(name: str, alg: str, *, use: str | None = None) -> JwkKey:
    """The recipient key for a profile cell: RSA1_5 is only for keys pinned to it (same kid)."""
    return fixed_key(name, use=use, alg="RSA1_5" if alg == "RSA1_5" else None)


def canary_gopc() -> bytes:
    card = Card(account_number=Pan(CANARY_PAN), expiry_month="12", expiry_year="29")
    return Gopc(server_session_id="session-0123456789abcdef", card=card).to_json()


def load_vector(*parts: str) -> Any:
    return json.loads(VECTORS.joinpath(*parts).read_text(encoding="utf-8"))


def forge_jwe(
    header: dict[str, Any] | bytes,
    content: bytes,
    recipient: JwkKey,
    *,
    wrap_alg: str = "RSA-OAEP-256",
    enc: str = "A256GCM",
    encrypted_key: bytes | None = None,
) -> bytes:
    """A compact JWE with any header we like, built from our own primitives."""
    header_b64 = header if isinstance(header, bytes) else encode_header(header)
    cek = os.urandom(cek_bytes(enc))
    iv = os.urandom(iv_bytes(enc))
    ciphertext, tag = encrypt_content(enc, cek, iv, content, header_b64)
    if encrypted_key is None:
        encrypted_key = wrap_cek(recipient._public, wrap_alg, cek)
    segments = (encrypted_key, iv, ciphertext, tag)
    return b".".join((header_b64, *(b64u_encode(segment) for segment in segments)))


def decode_header(token: bytes) -> Any:
    return json.loads(b64u_decode(token.split(b".")[0]))
