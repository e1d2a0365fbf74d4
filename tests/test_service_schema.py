"""Schemathesis against the generated /openapi.json: no 5xx and no schema violation.

Runs on the ASGI app in-process (transport-level checks are in test_service_tls.py); requests
carry a valid API key so the generated bodies reach the handlers, not only the 404 gate.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from pushprov import openpgp
from pushprov.keys import FileKeySource
from pushprov.service import ServiceConfig, SqliteServiceState, create_app

NOW = dt.datetime.now(dt.UTC)


def _app(tmp: Path) -> tuple[object, str]:
    key = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    state = SqliteServiceState(tmp / "state.sqlite")
    api_key = state.add_client("fuzzer", at=NOW)
    app = create_app(
        ServiceConfig(data_dir=tmp, rate_limit_per_second=100_000),
        keys=FileKeySource(signers=[key], recipients=[key.certificate]),
        state=state,
    )
    return app, api_key


def test_schemathesis_finds_no_5xx_and_no_schema_violation(tmp_path: Path) -> None:
    app, api_key = _app(tmp_path)
    # The document, too, is for known callers only.
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, headers={"authorization": f"Bearer {api_key}"}
    )
    failures: list[str] = []

    def run_operation(operation: Any) -> None:
        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers={"authorization": f"Bearer {api_key}"})
            try:
                # Every default check but positive-data acceptance: Luhn and the ±60 s window
                # refuse schema-valid bodies on purpose, which no JSON schema can express.
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
            except Exception as error:
                failures.append(f"{operation.label}: {type(error).__name__}: {error}"[:500])

        check()

    operations = 0
    for result in schema.get_all_operations():
        run_operation(result.ok())  # type: ignore[union-attr]
        operations += 1
    assert operations >= 7
    assert failures == []
