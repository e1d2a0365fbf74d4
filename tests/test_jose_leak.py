"""A canary card number through every JOSE path: it must show up in no log, error or repr."""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from pushprov._errors import PushprovError
from pushprov._opened import Opened
from pushprov._policy import GOOGLE_PROFILE
from pushprov.jose import JwkKey, load_jwk, load_jwks, open_jwe, seal_jwe
from pushprov.jose._compact import b64u_encode, encode_header

from .jose_support import (
    CANARY_PAN,
    NOW,
    PROFILE_CELLS,
    canary_gopc,
    cell_recipient,
    fixed_key,
    forge_jwe,
)

GOPC = canary_gopc()
NESTED = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "leak-recipient", "cty": "JWT"}


def _keys() -> tuple[JwkKey, JwkKey, JwkKey]:
    return fixed_key("leak-signer"), fixed_key("leak-recipient"), fixed_key("leak-other")


def _legacy() -> JwkKey:
    """The recipient for RSA1_5, which only a key pinned to it serves (kid "leak-recipient")."""
    return cell_recipient("leak-recipient", "RSA1_5")


def _seal(**options: Any) -> bytes:
    signer, recipient, _ = _keys()
    if options.get("alg") == "RSA1_5":
        recipient = _legacy()
    return seal_jwe(GOPC, sign_with=signer, encrypt_to=recipient, at=NOW, **options)


def _open(token: bytes, **options: Any) -> Opened:
    signer, recipient, _ = _keys()
    options.setdefault("at", NOW)
    # Both recipients: the token's alg picks between them, as in a real key set.
    keys = [recipient, _legacy()]
    return open_jwe(token, decrypt_with=keys, verify_with=[signer], **options)


def _tamper(token: bytes, index: int) -> bytes:
    segments = token.split(b".")
    segments[index] = segments[index][:-2] + (b"AA" if segments[index][-2:] != b"AA" else b"AQ")
    return b".".join(segments)


def _canary_kid_jws() -> bytes:
    header = encode_header({"alg": "RS256", "kid": CANARY_PAN})
    return header + b"." + b64u_encode(GOPC) + b"." + b64u_encode(b"\0" * 256)


ERROR_PATHS: dict[str, Callable[[], object]] = {
    "wrong key": lambda: open_jwe(
        _seal(), decrypt_with=[fixed_key("leak-other")], verify_with=[], at=NOW
    ),
    "tampered tag": lambda: _open(_tamper(_seal(), 4)),
    "tampered ciphertext": lambda: _open(_tamper(_seal(enc="A128CBC-HS256"), 3)),
    "rsa1_5 bad padding": lambda: _open(_tamper(_seal(alg="RSA1_5"), 1)),
    "untrusted signer": lambda: open_jwe(
        _seal(),
        decrypt_with=[fixed_key("leak-recipient")],
        verify_with=[fixed_key("leak-other")],
        at=NOW,
    ),
    "expired signer": lambda: _open(_seal(), at=NOW.replace(year=2028)),
    "unsigned refused": lambda: _open(
        forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, GOPC, fixed_key("leak-recipient"))
    ),
    "cty JWT over a bare GOPC": lambda: _open(forge_jwe(NESTED, GOPC, fixed_key("leak-recipient"))),
    "zlib-wrapped GOPC": lambda: _open(
        forge_jwe({**NESTED, "zip": "DEF"}, zlib.compress(GOPC), fixed_key("leak-recipient"))
    ),
    "canary as kid of a forged JWS": lambda: _open(
        forge_jwe(NESTED, _canary_kid_jws(), fixed_key("leak-recipient"))
    ),
    "canary as JWE kid": lambda: _open(
        forge_jwe({**NESTED, "kid": CANARY_PAN}, GOPC, fixed_key("leak-recipient"))
    ),
    "canary as JWE alg": lambda: _open(
        forge_jwe({**NESTED, "alg": CANARY_PAN}, GOPC, fixed_key("leak-recipient"))
    ),
    "canary as JWE enc": lambda: _open(
        forge_jwe({**NESTED, "enc": CANARY_PAN}, GOPC, fixed_key("leak-recipient"))
    ),
    "canary as header member name": lambda: _open(
        forge_jwe(
            {**NESTED, "crit": [CANARY_PAN], CANARY_PAN: 1}, GOPC, fixed_key("leak-recipient")
        )
    ),
    "canary in base64 position": lambda: _open(
        _seal().replace(b".", b"." + CANARY_PAN.encode(), 1)
    ),
    "canary token": lambda: _open(CANARY_PAN.encode()),
    "seal over the cap": lambda: _seal(
        policy=dataclasses.replace(GOOGLE_PROFILE, max_plaintext_bytes=len(GOPC) - 1)
    ),
    "open over the cap": lambda: _open(
        _seal(), policy=dataclasses.replace(GOOGLE_PROFILE, max_plaintext_bytes=len(GOPC) - 1)
    ),
    "seal with a key pinned to a canary alg": lambda: seal_jwe(
        GOPC,
        sign_with=fixed_key("leak-signer"),
        encrypt_to=load_jwk(
            json.dumps({**json.loads(fixed_key("leak-recipient").to_json()), "alg": CANARY_PAN})
        ),
        at=NOW,
    ),
    "JWK with canary use": lambda: load_jwk(
        json.dumps({**json.loads(fixed_key("leak-other").to_json()), "use": CANARY_PAN})
    ),
    "JWK with canary modulus": lambda: load_jwk(
        json.dumps({"kty": "RSA", "n": CANARY_PAN, "e": "AQAB"})
    ),
    "JWKS with canary member": lambda: load_jwks(json.dumps({"keys": [CANARY_PAN]})),
    "PEM with canary body": lambda: load_jwk(
        f"-----BEGIN PUBLIC KEY-----\n{CANARY_PAN}\n-----END PUBLIC KEY-----\n"
    ),
}


def _texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, PushprovError):
        texts.append(error.message)
    return texts


@pytest.mark.parametrize("name", sorted(ERROR_PATHS))
def test_error_paths_do_not_leak_the_canary(name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PushprovError) as caught:
        ERROR_PATHS[name]()
    error = caught.value
    assert error.__cause__ is None  # raised "from None" or fresh: no chained text
    for text in (*_texts(error), caplog.text, *(r.getMessage() for r in caplog.records)):
        assert CANARY_PAN not in text


def test_success_paths_do_not_leak_the_canary(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    signer, recipient, other = _keys()
    shown: list[object] = [signer, recipient, other, GOOGLE_PROFILE]
    for alg, enc, compress in PROFILE_CELLS:
        for jws_alg in ("RS256", "PS256"):
            opened = _open(_seal(alg=alg, enc=enc, compress=compress, jws_alg=jws_alg))
            assert opened.plaintext == GOPC
            shown += [opened, opened.signatures]
    unsigned = forge_jwe({"alg": "RSA1_5", "enc": "A256GCM"}, GOPC, _legacy(), wrap_alg="RSA1_5")
    shown.append(_open(unsigned, allow_unsigned=True))
    shown += [
        load_jwk(recipient.to_json(private=True)),
        load_jwks(json.dumps({"keys": [json.loads(signer.to_json())]})),
    ]
    texts = [repr(item) for item in shown] + [str(item) for item in shown]
    texts += [caplog.text, *(record.getMessage() for record in caplog.records)]
    assert CANARY_PAN.encode() in GOPC  # the canary is really in the plaintext
    for text in texts:
        assert CANARY_PAN not in text
