"""Inputs the fuzzers (fuzz/, docs/fuzzing.md) found escaping as something else than a
``PushprovError``, each refused properly now. Crashing inputs found by the fuzzer are kept as
files in tests/fuzz_regressions/; the others are their siblings, found reading the same code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pushprov import UsageError
from pushprov.service import ServiceConfig

FOUND = Path(__file__).resolve().parent / "fuzz_regressions"


@pytest.mark.parametrize(
    "text",
    [
        (FOUND / "config-non-utf8.toml").read_bytes(),  # fuzzer: UnicodeDecodeError
        b"service = 1",  # TypeError: a [service] that is not a table
        b"timestamp_skew = inf",  # OverflowError: timedelta
        b"timestamp_skew = 1e300",  # OverflowError: timedelta
        b"port = inf",  # OverflowError: int
        b'data_dir = "~nosuchuser-pushprov/x"',  # RuntimeError: no such home directory
    ],
    ids=["non-utf8", "service-not-table", "inf-duration", "huge-duration", "inf-int", "no-home"],
)
def test_config_refuses_with_usage_error(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "service.toml"
    path.write_bytes(text)
    with pytest.raises(UsageError) as refused:
        ServiceConfig.load(path, environ={})
    assert refused.value.exit_status == 2
