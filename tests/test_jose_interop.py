"""Interop both ways with jwcrypto (Python) and panva/jose (Node.js), every profile cell.

A cell is alg x enc x zip of the profile; the payload is a nested JWS (RS256) in each. RSA1_5
cells use a recipient key pinned to RSA1_5 (same kid): we use RSA1_5 only with such keys.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from jwcrypto import jwe as jw_jwe
from jwcrypto import jwk as jw_jwk
from jwcrypto import jws as jw_jws

from pushprov.jose import JwkKey, open_jwe, seal_jwe

from .jose_support import (
    NOW,
    PROFILE_CELLS,
    canary_gopc,
    cell_recipient,
    decode_header,
    fixed_key,
)

NODE_DIR = Path(__file__).parent / "interop" / "node"
PAYLOAD = canary_gopc()


def _ids(cell: tuple[str, str, bool]) -> str:
    alg, enc, compress = cell
    return f"{alg}-{enc}-{'zip' if compress else 'nozip'}"


CELL_IDS = [_ids(cell) for cell in PROFILE_CELLS]


def _keys(alg: str = "RSA-OAEP-256") -> tuple[JwkKey, JwkKey]:
    """The signer, and the recipient for a cell of key-management algorithm ``alg``."""
    return fixed_key("interop-signer"), cell_recipient("interop-recipient", alg)


def _jw_key(key: JwkKey, *, private: bool) -> Any:
    return jw_jwk.JWK.from_json(key.to_json(private=private))


# --- jwcrypto ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "enc", "compress"), PROFILE_CELLS, ids=CELL_IDS)
def test_jwcrypto_tokens_open_with_us(alg: str, enc: str, compress: bool) -> None:
    signer, recipient = _keys(alg)
    signature = jw_jws.JWS(PAYLOAD)
    signature.add_signature(
        _jw_key(signer, private=True), alg="RS256", protected={"alg": "RS256", "kid": signer.kid}
    )
    header = {"alg": alg, "enc": enc, "kid": recipient.kid, "cty": "JWT"}
    if compress:
        header["zip"] = "DEF"
    token = jw_jwe.JWE(signature.serialize(compact=True), protected=header, algs=[alg, enc])
    token.add_recipient(_jw_key(recipient, private=False))
    compact = token.serialize(compact=True)
    opened = open_jwe(compact, decrypt_with=[recipient], verify_with=[signer.public()], at=NOW)
    assert opened.plaintext == PAYLOAD
    assert (opened.signers, opened.cipher) == ((signer.kid,), enc)


@pytest.mark.parametrize(("alg", "enc", "compress"), PROFILE_CELLS, ids=CELL_IDS)
def test_our_tokens_open_with_jwcrypto(alg: str, enc: str, compress: bool) -> None:
    signer, recipient = _keys(alg)
    token = seal_jwe(
        PAYLOAD,
        sign_with=signer,
        encrypt_to=recipient.public(),
        at=NOW,
        alg=alg,
        enc=enc,
        compress=compress,
    )
    decrypted = jw_jwe.JWE(algs=[alg, enc])
    decrypted.deserialize(token.decode(), key=_jw_key(recipient, private=True))
    assert decrypted.jose_header["cty"] == "JWT"
    verified = jw_jws.JWS()
    verified.deserialize(decrypted.payload.decode())
    verified.verify(_jw_key(signer, private=False), alg="RS256")
    assert verified.payload == PAYLOAD


@pytest.mark.parametrize("jws_alg", ["PS256", "RS384", "RS512"])
def test_other_signature_algorithms_verify_with_jwcrypto(jws_alg: str) -> None:
    signer, recipient = _keys()
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW, jws_alg=jws_alg)
    decrypted = jw_jwe.JWE(algs=["RSA-OAEP-256", "A256GCM"])
    decrypted.deserialize(token.decode(), key=_jw_key(recipient, private=True))
    verified = jw_jws.JWS()
    verified.deserialize(decrypted.payload.decode())
    verified.verify(_jw_key(signer, private=False), alg=jws_alg)
    assert verified.payload == PAYLOAD


def test_thumbprints_agree_with_jwcrypto() -> None:
    signer, _ = _keys()
    assert _jw_key(signer, private=False).thumbprint() == signer.thumbprint


# --- panva/jose -------------------------------------------------------------------------------


@functools.cache
def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js (node) is not installed: panva/jose interop not run")
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        # `make deps` runs `npm ci` here; without it the interop cannot run either.
        pytest.fail("tests/interop/node has no node_modules: run `make deps` (npm ci)")
    return node


def _run_node(mode: str, request: dict[str, Any]) -> list[dict[str, str]]:
    flags = ["--security-revert=CVE-2023-46809"] if mode == "open" else []
    done = subprocess.run(
        [_node(), *flags, "interop.mjs", mode],
        cwd=NODE_DIR,
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    # The revert flag makes Node print a warning on stdout first: the result is the last line.
    result: list[dict[str, str]] = json.loads(done.stdout.splitlines()[-1])
    assert len(result) == len(request["cells"])
    return result


@functools.cache
def _panva_tokens() -> tuple[bytes, ...]:
    signer, _ = _keys()
    request = {
        "payload_b64": base64.b64encode(PAYLOAD).decode(),
        "sign_jwk": json.loads(signer.to_json(private=True)),
        "cells": [
            {"alg": a, "enc": e, "zip": z, "enc_jwk": json.loads(_keys(a)[1].to_json())}
            for a, e, z in PROFILE_CELLS
        ],
    }
    return tuple(cell["token"].encode() for cell in _run_node("seal", request))


@functools.cache
def _panva_opened() -> tuple[dict[str, str], ...]:
    cells = []
    for alg, enc, compress in PROFILE_CELLS:
        signer, recipient = _keys(alg)
        token = seal_jwe(
            PAYLOAD,
            sign_with=signer,
            encrypt_to=recipient,
            at=NOW,
            alg=alg,
            enc=enc,
            compress=compress,
        )
        dec_jwk = json.loads(recipient.to_json(private=True))
        cells.append(
            {
                "token": token.decode(),
                "alg": alg,
                "enc": enc,
                "jws_alg": "RS256",
                "dec_jwk": dec_jwk,
            }
        )
    request = {"verify_jwk": json.loads(fixed_key("interop-signer").to_json()), "cells": cells}
    return tuple(_run_node("open", request))


@pytest.mark.parametrize("index", range(len(PROFILE_CELLS)), ids=CELL_IDS)
def test_panva_tokens_open_with_us(index: int) -> None:
    alg, enc, compress = PROFILE_CELLS[index]
    signer, recipient = _keys(alg)
    token = _panva_tokens()[index]
    header = decode_header(token)
    assert (header["alg"], header["enc"], header.get("zip")) == (
        alg,
        enc,
        "DEF" if compress else None,
    )
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    assert opened.plaintext == PAYLOAD
    assert opened.signers == (signer.kid,)


@pytest.mark.parametrize("index", range(len(PROFILE_CELLS)), ids=CELL_IDS)
def test_our_tokens_open_with_panva(index: int) -> None:
    outcome = _panva_opened()[index]
    assert "error" not in outcome, outcome.get("error")
    assert base64.b64decode(outcome["payload_b64"]) == PAYLOAD
