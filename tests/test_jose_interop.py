"""Interop both ways with four peers, each in its own default settings, every profile cell.

Peers: panva jose 6 and 5 (Node.js, tests/interop/node), jwcrypto and joserfc (Python). A
peer seals as its documentation shows: a compact JWS (RS256, the common default and one our
policy accepts), then a compact JWE of that string; no "cty", no options. It opens ours with
its plain decrypt and verify calls. A cell is alg x enc x zip (8 of them), signed RS256; the
other JWS algorithms our policy takes (PS256, RS384, RS512) get one cell each, both ways.

Where a peer refuses a cell in its default settings, the test asserts that refusal with the
peer's own error, then runs the cell with the one opt-in the peer documents for it, if any:
jwcrypto's ``algs=``, joserfc's ``JWERegistry``/``JWSRegistry(algorithms=...)`` (its header
checks stay strict), Node's ``--security-revert=CVE-2023-46809`` for jose 5's RSA1_5
decryption. Cells no setting enables are skipped with the refusal as the reason: jose 6 has
no RSA1_5, jose 5 has no "zip". RSA1_5 cells use a recipient key pinned to RSA1_5 (same
kid): we use RSA1_5 only with such keys.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwe as rfc_jwe
from joserfc import jws as rfc_jws
from joserfc.errors import JoseError, UnsupportedHeaderError
from joserfc.jwk import RSAKey
from jwcrypto import jwe as jw_jwe
from jwcrypto import jwk as jw_jwk
from jwcrypto import jws as jw_jws

from pushprov.jose import JwkKey, open_jwe, seal_jwe

from .instances import child_env
from .jose_support import (
    CANARY_PAN,
    NOW,
    PROFILE_CELLS,
    canary_gopc,
    cell_recipient,
    decode_header,
    fixed_key,
)

NODE_DIR = Path(__file__).parent / "interop" / "node"
PAYLOAD = canary_gopc()
PEERS = ("jose6", "jose5", "jwcrypto", "joserfc")
# Node refuses PKCS#1 v1.5 private decryption (Marvin) unless this flag reverts that.
NODE_REVERT = "--security-revert=CVE-2023-46809"


@dataclasses.dataclass(frozen=True)
class Cell:
    alg: str
    enc: str
    zip: bool
    jws_alg: str = "RS256"

    @property
    def id(self) -> str:
        zipped = "zip" if self.zip else "nozip"
        signed = "" if self.jws_alg == "RS256" else f"-{self.jws_alg}"
        return f"{self.alg}-{self.enc}-{zipped}{signed}"


CELLS = tuple(Cell(*cell) for cell in PROFILE_CELLS)
SIGNATURE_CELLS = tuple(
    Cell("RSA-OAEP-256", "A256GCM", False, a) for a in ("PS256", "RS384", "RS512")
)
GROUPS = {"profile": CELLS, "signatures": SIGNATURE_CELLS}
CASES = [(p, g, i) for g, cells in GROUPS.items() for p in PEERS for i in range(len(cells))]
CASE_IDS = [f"{peer}-{GROUPS[group][index].id}" for peer, group, index in CASES]


@dataclasses.dataclass(frozen=True)
class Refusal:
    """A cell a peer refuses in its default settings: its error, and whether an opt-in exists."""

    error: str  # a pattern the peer's own error matches
    opt_in: bool


def default_refusal(peer: str, direction: str, cell: Cell) -> Refusal | None:
    """What ``peer`` refuses when it seals ("seal") or opens ("open") ``cell`` by default."""
    if peer == "jose6" and cell.alg == "RSA1_5":
        # WebCrypto has no RSAES-PKCS1-v1_5, and jose 6 is WebCrypto only.
        return Refusal('ERR_JOSE_NOT_SUPPORTED: Invalid or unsupported JWK "alg"', opt_in=False)
    if peer == "jose5" and cell.zip:
        return Refusal('ERR_JOSE_NOT_SUPPORTED: JWE "zip" .* is not supported', opt_in=False)
    if peer == "jose5" and cell.alg == "RSA1_5" and direction == "open":
        return Refusal("RSA_PKCS1_PADDING is no longer supported for private decryption", True)
    if peer == "jwcrypto" and cell.alg == "RSA1_5":
        return Refusal("Algorithm not allowed", opt_in=True)
    if peer == "joserfc":
        # The default registries take "recommended" algorithms only: RSA-OAEP (SHA-1) and
        # RS256 are, RSA-OAEP-256, RSA1_5, PS256, RS384 and RS512 are not.
        return Refusal("Algorithm of '[^']+' is not recommended", opt_in=True)
    return None


def _keys(alg: str = "RSA-OAEP-256") -> tuple[JwkKey, JwkKey]:
    """The signer, and the recipient for a cell of key-management algorithm ``alg``."""
    return fixed_key("interop-signer"), cell_recipient("interop-recipient", alg)


def _jwk(key: JwkKey, *, private: bool) -> dict[str, Any]:
    """The JWK as we hand it to a stranger (our "iat"/"exp" members included)."""
    doc: dict[str, Any] = json.loads(key.to_json(private=private))
    return doc


def _error(error: Exception) -> dict[str, str]:
    return {"error": f"{type(error).__name__}: {error}"}


# --- the peers -------------------------------------------------------------------------------
# Each returns, per cell, {"token": ...} (seal) or {"payload_b64", "jwe_header", "jws_header"}
# (open), or {"error": ...} when the peer refuses.


def _jwcrypto_seal(cell: Cell, opt_in: bool) -> dict[str, Any]:
    signer, recipient = _keys(cell.alg)
    try:
        signature = jw_jws.JWS(PAYLOAD)
        signature.add_signature(
            jw_jwk.JWK(**_jwk(signer, private=True)),
            alg=cell.jws_alg,
            protected={"alg": cell.jws_alg, "kid": signer.kid},
        )
        header = {"alg": cell.alg, "enc": cell.enc, "kid": recipient.kid}
        if cell.zip:
            header["zip"] = "DEF"
        token = jw_jwe.JWE(
            signature.serialize(compact=True),
            protected=header,
            algs=[cell.alg, cell.enc] if opt_in else None,
        )
        token.add_recipient(jw_jwk.JWK(**_jwk(recipient, private=False)))
        return {"token": token.serialize(compact=True)}
    except Exception as error:  # the refusal is the result, whatever its class
        return _error(error)


def _jwcrypto_open(cell: Cell, token: str, opt_in: bool) -> dict[str, Any]:
    signer, recipient = _keys(cell.alg)
    try:
        decrypted = jw_jwe.JWE(algs=[cell.alg, cell.enc] if opt_in else None)
        decrypted.deserialize(token, key=jw_jwk.JWK(**_jwk(recipient, private=True)))
        verified = jw_jws.JWS()
        verified.deserialize(decrypted.payload.decode())
        verified.verify(jw_jwk.JWK(**_jwk(signer, private=False)))
        return {
            "payload_b64": base64.b64encode(verified.payload).decode(),
            "jwe_header": decrypted.jose_header,
            "jws_header": verified.jose_header,
        }
    except Exception as error:
        return _error(error)


def _joserfc_registry(cell: Cell, opt_in: bool) -> rfc_jwe.JWERegistry | None:
    # Only the algorithm list is set: header checks keep the default (strict) registry.
    return rfc_jwe.JWERegistry(algorithms=[cell.alg, cell.enc, "DEF"]) if opt_in else None


def _joserfc_jws_registry(cell: Cell, opt_in: bool) -> rfc_jws.JWSRegistry | None:
    # RS256 is "recommended": its JWS always goes through the default registry.
    recommended = cell.jws_alg in rfc_jws.JWSRegistry.recommended
    return rfc_jws.JWSRegistry(algorithms=[cell.jws_alg]) if opt_in and not recommended else None


def _joserfc_seal(cell: Cell, opt_in: bool) -> dict[str, Any]:
    signer, recipient = _keys(cell.alg)
    try:
        jws = rfc_jws.serialize_compact(
            {"alg": cell.jws_alg, "kid": signer.kid},
            PAYLOAD,
            RSAKey.import_key(_jwk(signer, private=True)),
            registry=_joserfc_jws_registry(cell, opt_in),
        )
        header = {"alg": cell.alg, "enc": cell.enc, "kid": recipient.kid}
        if cell.zip:
            header["zip"] = "DEF"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc warns that RSA1_5 is deprecated
            token = rfc_jwe.encrypt_compact(
                header,
                jws,
                RSAKey.import_key(_jwk(recipient, private=False)),
                registry=_joserfc_registry(cell, opt_in),
            )
        return {"token": token}
    except JoseError as error:
        return _error(error)


def _joserfc_open(cell: Cell, token: str, opt_in: bool) -> dict[str, Any]:
    signer, recipient = _keys(cell.alg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decrypted = rfc_jwe.decrypt_compact(
                token,
                RSAKey.import_key(_jwk(recipient, private=True)),
                registry=_joserfc_registry(cell, opt_in),
            )
        assert decrypted.plaintext is not None
        verified = rfc_jws.deserialize_compact(
            decrypted.plaintext,
            RSAKey.import_key(_jwk(signer, private=False)),
            registry=_joserfc_jws_registry(cell, opt_in),
        )
        return {
            "payload_b64": base64.b64encode(verified.payload).decode(),
            "jwe_header": decrypted.protected,
            "jws_header": verified.protected,
        }
    except JoseError as error:
        return _error(error)


@functools.cache
def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js (node) is not installed: panva/jose interop not run")
    if not all((NODE_DIR / "node_modules" / lib).is_dir() for lib in ("jose", "jose5")):
        # `make deps` runs `npm ci` here; without it the interop cannot run either.
        pytest.fail("tests/interop/node has no node_modules: run `make deps` (npm ci)")
    return node


def _run_node(mode: str, request: dict[str, Any], flags: tuple[str, ...] = ()) -> list[Any]:
    done = subprocess.run(
        [_node(), *flags, "interop.mjs", mode],
        cwd=NODE_DIR,
        input=json.dumps(request).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    # A revert flag makes Node print a warning on stdout first: the result is the last line.
    result: list[Any] = json.loads(done.stdout.splitlines()[-1])
    assert len(result) == len(request["cells"])
    return result


def _panva_seal(lib: str, cells: tuple[Cell, ...]) -> list[dict[str, Any]]:
    signer, _ = _keys()
    request = {
        "payload_b64": base64.b64encode(PAYLOAD).decode(),
        "sign_jwk": _jwk(signer, private=True),
        "cells": [
            {
                "lib": lib,
                "alg": cell.alg,
                "enc": cell.enc,
                "zip": cell.zip,
                "jws_alg": cell.jws_alg,
                "enc_jwk": _jwk(_keys(cell.alg)[1], private=False),
            }
            for cell in cells
        ],
    }
    return _run_node("seal", request)


def _panva_open(lib: str, opt_in: bool, cells: tuple[Cell, ...]) -> list[dict[str, Any]]:
    request = {
        "verify_jwk": _jwk(_keys()[0], private=False),
        "cells": [
            {
                "lib": lib,
                "token": token.decode(),
                "alg": cell.alg,
                "jws_alg": cell.jws_alg,
                "dec_jwk": _jwk(_keys(cell.alg)[1], private=True),
            }
            for cell, token in zip(cells, our_tokens(cells), strict=True)
        ],
    }
    return _run_node("open", request, (NODE_REVERT,) if opt_in else ())


_PY_SEAL: dict[str, Callable[[Cell, bool], dict[str, Any]]] = {
    "jwcrypto": _jwcrypto_seal,
    "joserfc": _joserfc_seal,
}
_PY_OPEN: dict[str, Callable[[Cell, str, bool], dict[str, Any]]] = {
    "jwcrypto": _jwcrypto_open,
    "joserfc": _joserfc_open,
}


@functools.cache
def sealed_by(peer: str, opt_in: bool, group: str) -> tuple[dict[str, Any], ...]:
    """The group's cells as ``peer`` seals them (jose has no opt-in for sealing: one run)."""
    cells = GROUPS[group]
    if peer in _PY_SEAL:
        return tuple(_PY_SEAL[peer](cell, opt_in) for cell in cells)
    return sealed_by(peer, False, group) if opt_in else tuple(_panva_seal(peer, cells))


@functools.cache
def opened_by(peer: str, opt_in: bool, group: str) -> tuple[dict[str, Any], ...]:
    """The group's cells, sealed by us, as ``peer`` opens them."""
    cells = GROUPS[group]
    if peer in _PY_OPEN:
        return tuple(
            _PY_OPEN[peer](cell, token.decode(), opt_in)
            for cell, token in zip(cells, our_tokens(cells), strict=True)
        )
    return tuple(_panva_open(peer, opt_in, cells))


@functools.cache
def our_tokens(cells: tuple[Cell, ...]) -> tuple[bytes, ...]:
    signer, _ = _keys()
    return tuple(
        seal_jwe(
            PAYLOAD,
            sign_with=signer,
            encrypt_to=_keys(cell.alg)[1].public(),
            at=NOW,
            alg=cell.alg,
            enc=cell.enc,
            jws_alg=cell.jws_alg,
            compress=cell.zip,
        )
        for cell in cells
    )


Run = Callable[[str, bool, str], tuple[dict[str, Any], ...]]


def _outcome(peer: str, direction: str, group: str, index: int, run: Run) -> dict[str, Any]:
    """The peer's result for a cell: by default, or after asserting its default refusal, with
    its opt-in; skipped with the refusal as the reason when the peer has none."""
    outcome = run(peer, False, group)[index]
    refusal = default_refusal(peer, direction, GROUPS[group][index])
    if refusal is None:
        assert "error" not in outcome, outcome.get("error")
        return outcome
    assert "error" in outcome, f"{peer} no longer refuses this cell by default: update the table"
    assert re.search(refusal.error, outcome["error"]), outcome["error"]
    if not refusal.opt_in:
        pytest.skip(f"{peer} cannot {direction} this cell in any setting: {outcome['error']}")
    outcome = run(peer, True, group)[index]
    assert "error" not in outcome, outcome.get("error")
    return outcome


# --- peers seal, we open ---------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "group", "index"), CASES, ids=CASE_IDS)
def test_peer_tokens_open_with_us(peer: str, group: str, index: int) -> None:
    cell = GROUPS[group][index]
    signer, recipient = _keys(cell.alg)
    token = _outcome(peer, "seal", group, index, sealed_by)["token"].encode()
    header = decode_header(token)
    assert "cty" not in header  # the peers' way: a nested JWS with nothing declaring it
    assert (header["alg"], header["enc"], header.get("zip")) == (
        cell.alg,
        cell.enc,
        "DEF" if cell.zip else None,
    )
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer.public()], at=NOW)
    assert opened.plaintext == PAYLOAD
    assert (opened.signers, opened.cipher) == ((signer.kid,), cell.enc)
    (signature,) = opened.signatures
    assert (signature.hash_algorithm, signature.created) == (cell.jws_alg, None)


def _cli(*args: str, stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pushprov", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=child_env(os.environ),
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our recipient keys (OAEP and RSA1_5-pinned, one file each) and the peers' signer."""
    path = tmp_path_factory.mktemp("jose-interop")
    signer, oaep = _keys()
    (path / "oaep.jwk").write_text(oaep.to_json(private=True))
    (path / "legacy.jwk").write_text(_keys("RSA1_5")[1].to_json(private=True))
    (path / "signer.pub.jwk").write_text(signer.public().to_json())
    return path


@pytest.mark.parametrize("peer", PEERS)
def test_peer_tokens_open_with_the_cli(peer: str, key_files: Path) -> None:
    # As a user meets them, in a pass over the peer's first and last cell (each CLI run costs
    # seconds; the library opens every cell above): `pushprov open` and `pushprov gopc open`.
    tokens = [
        outcome["token"].encode()
        for index in range(len(CELLS))
        for outcome in (
            sealed_by(peer, False, "profile")[index],
            sealed_by(peer, True, "profile")[index],
        )
        if "token" in outcome
    ]
    tokens = list(dict.fromkeys(tokens))  # jose seals once for both settings
    assert len(tokens) >= 4, f"{peer} sealed too few cells to test"
    keys = ["--decrypt-with", "oaep.jwk", "--decrypt-with", "legacy.jwk"]
    keys += ["--verify-with", "signer.pub.jwk", "--at", NOW.isoformat()]
    done = _cli("open", "--format", "jwe", "--json", *keys, stdin=tokens[0], cwd=key_files)
    assert done.returncode == 0, done.stderr.decode()
    facts = json.loads(done.stdout)
    assert base64.b64decode(facts["plaintext_base64"]) == PAYLOAD
    assert [s["certificate"] for s in facts["signatures"]] == ["interop-signer"]
    assert facts["signatures"][0]["created"] is None  # the peers write no signing time
    session = json.loads(PAYLOAD)["validationContext"]["serverSessionId"]
    done = _cli(
        "gopc", "open", "--format", "jwe", "--session-id", session, "--masked", *keys,
        stdin=tokens[-1], cwd=key_files,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    summary = done.stdout.decode()
    assert summary.startswith("GOPC ok: card ") and "signed by interop-signer" in summary
    assert CANARY_PAN not in summary


# --- we seal, peers open ---------------------------------------------------------------------


@pytest.mark.parametrize(("peer", "group", "index"), CASES, ids=CASE_IDS)
def test_our_tokens_open_with_peer(peer: str, group: str, index: int) -> None:
    cell = GROUPS[group][index]
    signer, recipient = _keys(cell.alg)
    outcome = _outcome(peer, "open", group, index, opened_by)
    assert base64.b64decode(outcome["payload_b64"]) == PAYLOAD
    # Registered members only: strict peers (joserfc's default registry) refuse any other.
    assert outcome["jws_header"] == {"alg": cell.jws_alg, "kid": signer.kid}
    assert outcome["jwe_header"] == {
        "alg": cell.alg,
        "enc": cell.enc,
        **({"zip": "DEF"} if cell.zip else {}),
        "kid": recipient.kid,
        "cty": "JWT",
    }


def test_joserfc_default_registry_refuses_a_signing_time_in_the_header() -> None:
    # Why our JWS header carries no "iat": joserfc's default registry refuses it.
    signer, _ = _keys()
    secret = RSAKey.import_key(_jwk(signer, private=True))
    public = RSAKey.import_key(_jwk(signer, private=False))
    with_iat = rfc_jws.serialize_compact(
        {"alg": "RS256", "kid": signer.kid, "iat": int(NOW.timestamp())},
        PAYLOAD,
        secret,
        registry=rfc_jws.JWSRegistry(strict_check_header=False),
    )
    with pytest.raises(UnsupportedHeaderError, match="iat"):
        rfc_jws.deserialize_compact(with_iat, public)
    plain = rfc_jws.serialize_compact({"alg": "RS256", "kid": signer.kid}, PAYLOAD, secret)
    assert rfc_jws.deserialize_compact(plain, public).payload == PAYLOAD


def test_thumbprints_agree_with_jwcrypto() -> None:
    signer, _ = _keys()
    assert jw_jwk.JWK(**_jwk(signer, private=False)).thumbprint() == signer.thumbprint
