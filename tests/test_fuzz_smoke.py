"""A short coverage-guided run of every fuzz target (fuzz/), as CI's smoke of the fuzzers.

Each target runs a few seconds under atheris in its own process, from its seed corpus: the
seeds themselves must pass, and nothing the fuzzer makes from them in that time may escape as
anything but a ``PushprovError`` (or hang, or blow up memory). docs/fuzzing.md has the longer
runs and their figures; `python -m fuzz TARGET --seconds N` is the same run, longer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import CORPUS, TARGETS, load

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 3


def _need_atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("CI"):
            pytest.fail("atheris is required in CI (the test extra installs it)")
        pytest.skip("atheris not installed")


def test_every_target_has_seeds_and_a_readme() -> None:
    for target in TARGETS:
        folder = CORPUS / target
        seeds = [p for p in folder.iterdir() if p.name != "README.md"]
        assert seeds, target
        assert max(p.stat().st_size for p in seeds) <= 8 * 1024, target  # small on purpose
        assert len((folder / "README.md").read_text().strip().splitlines()) == 1, target


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_briefly(target: str, tmp_path: Path) -> None:
    _need_atheris()
    run = subprocess.run(
        [sys.executable, "-m", "fuzz", target, "--seconds", str(SECONDS), "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    crashes = sorted((tmp_path / target / "crashes").iterdir())
    assert run.returncode == 0 and not crashes, run.stderr[-4000:]
    executed = re.search(r"stat::number_of_executed_units: (\d+)", run.stderr)
    assert executed is not None, run.stderr[-2000:]
    # More than the seeds alone: the fuzzer really mutated and ran inputs.
    assert int(executed.group(1)) > len(list((CORPUS / target).iterdir())), run.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Structured inputs (Hypothesis): documents of the right shape whose members hold values of any
# type, which byte-level mutation reaches only by luck. They go through the same harnesses.
# ---------------------------------------------------------------------------------------------

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
)
_ANY = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
_FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _object(members: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of ``members``, each with a typical value or a value of any type."""
    return st.fixed_dictionaries({}, optional={n: s | _ANY for n, s in members.items()})


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _jwk_members() -> dict[str, st.SearchStrategy[Any]]:
    seed = json.loads((CORPUS / "jwk" / "public.jwk").read_text())
    return {
        "kty": st.just("RSA"),
        "n": st.just(seed["n"]),
        "e": st.sampled_from(["AQAB", "Aw", "AA", "AQAB_"]),
        "kid": st.text(max_size=300),
        "alg": st.sampled_from(["RS256", "PS256", "RSA1_5", "RSA-OAEP-256", "none"]),
        "use": st.sampled_from(["sig", "enc"]),
        "key_ops": st.lists(st.sampled_from(["sign", "verify", "encrypt", "decrypt", "x"])),
        "iat": st.integers(min_value=-1, max_value=2**40),
        "exp": st.integers(min_value=-1, max_value=2**40),
        "d": st.just(seed["n"]),
    }


@_FAST
@given(document=_object(_jwk_members()))
def test_structured_jwk(document: dict[str, Any]) -> None:
    load("jwk")(_json(document))
    load("jwk")(_json({"keys": [document, document]}))


_CARD = {
    "accountNumber": st.from_regex(r"[0-9]{12,19}", fullmatch=True),
    "expiryMonth": st.sampled_from(["01", "12", "13", "1"]),
    "expiryYear": st.from_regex(r"[0-9]{1,3}", fullmatch=True),
}


@_FAST
@given(
    document=_object(
        {
            "protocolHeader": _object({"version": st.integers()}),
            "validationContext": _object({"serverSessionId": st.text(max_size=80)}),
            "paymentCard": _object(_CARD),
        }
    )
)
def test_structured_gopc(document: dict[str, Any]) -> None:
    load("gopc")(_json(document))


@_FAST
@given(
    document=_object(
        {
            "requestHeader": _object(
                {
                    "requestId": st.from_regex(r"[A-Za-z0-9:_-]{1,101}", fullmatch=True),
                    "requestTimestamp": st.from_regex(r"[0-9]{1,16}", fullmatch=True),
                }
            ),
            "serverSessionId": st.text(max_size=80),
            "card": _object(_CARD),
            "encoding": st.sampled_from(["base64", "base64url", "armor"]),
            "format": st.sampled_from(["pgp", "jwe", "x"]),
        }
    )
)
def test_structured_request(document: dict[str, Any]) -> None:
    load("request")(_json(document))


_TOML_VALUES = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.sampled_from(["inf", "-inf", "nan", "1e300", "0.0", "true", "[]", "{}", "[1, 2]"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.text(max_size=30).map(json.dumps),
    st.sampled_from(['"~/x"', '"~nobody-pushprov/x"', '""', "1979-05-27T07:32:00Z"]),
)
_CONFIG_KEYS = [
    "host", "port", "workers", "data_dir", "tls_cert", "tls_key", "tls_client_ca", "store",
    "store_passphrase_file", "env", "format", "timestamp_skew", "idempotency_window",
    "rate_limit_per_second", "max_body_bytes", "read_timeout", "queue_limit",
    "key_refresh_seconds", "graceful_shutdown_seconds", "log_level", "service",
    "header_timeout_seconds", "request_timeout_seconds", "max_connections",
    "canary_fraction", "canary_per_minute", "canary_verify_after", "outcome_window",
]  # fmt: skip


@_FAST
@given(
    entries=st.dictionaries(st.sampled_from(_CONFIG_KEYS), _TOML_VALUES, max_size=6),
    table=st.booleans(),
)
def test_structured_config(entries: dict[str, str], table: bool) -> None:
    lines = [f"{name} = {value}" for name, value in entries.items()]
    load("config")((("[service]\n" if table else "") + "\n".join(lines)).encode())
