"""The error classes are the one map of outcomes: exit status, HTTP status, errorResponseCode.

The README's table, ``pushprov --help`` and the service are all checked against the classes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

import pushprov
from pushprov import hsm, jose, keys, openpgp, store
from pushprov._errors import PushprovError, error_classes
from pushprov.cli._exits import exit_status_epilog
from pushprov.keys import FileKeySource
from pushprov.service._answers import ERROR_STATUSES, refusal

from .service_support import running_server

README = Path(__file__).resolve().parent.parent / "README.md"
_GROUPS = (pushprov.InputError, pushprov.KeysError, pushprov.StoreError)


def _exported_errors() -> set[type[PushprovError]]:
    modules = (pushprov, keys, store, hsm)
    named = {getattr(module, name) for module in modules for name in module.__all__}
    return {cls for cls in named if isinstance(cls, type) and issubclass(cls, PushprovError)}


def _readme_rows() -> list[tuple[int, str, int, str, str]]:
    text = README.read_text()
    start = text.index("| status | code | HTTP | errorResponseCode | when |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        status, code, http, response, when = (cell.strip() for cell in line.split("|")[1:-1])
        rows.append((int(status), code.strip("`"), int(http or 0), response.strip("`"), when))
    return rows


def _class_rows() -> list[tuple[int, str, int, str, str]]:
    return [
        (cls.exit_status, cls.code, cls.http_status, cls.response_code, (cls.__doc__ or "").strip())
        for cls in error_classes()
    ]


def _markdown(rows: list[tuple[int, str, int, str, str]]) -> str:
    return "\n".join(f"| {s} | `{c}` | {h} | `{r}` | {w} |" for s, c, h, r, w in rows)


def test_readme_table_is_the_classes_both_ways() -> None:
    readme = _readme_rows()
    assert readme[0] == (0, "", 0, "", "success")
    # Every class is in the README with its outcome and its docstring, and every README row is
    # a class: the README table is the classes, row for row, in exit-status order.
    assert readme[1:] == _class_rows(), "README table should read:\n" + _markdown(_class_rows())


def test_every_exported_error_is_in_the_map_and_only_groups_are_not() -> None:
    exported = _exported_errors()
    assert set(error_classes()) == exported - set(_GROUPS)
    assert set(_GROUPS) <= exported
    statuses = [cls.exit_status for cls in error_classes()]
    assert len(set(statuses)) == len(statuses) == 26
    assert len({cls.code for cls in error_classes()}) == 26


def test_each_class_states_its_whole_outcome_and_one_line_on_when() -> None:
    for cls in error_classes():
        for name in ("code", "exit_status", "http_status", "response_code"):
            assert name in vars(cls), (cls, name)
        assert cls.__doc__ and "\n" not in cls.__doc__.strip(), cls
        # Only statuses the service documents; 404 and 409 mean something else there.
        assert cls.http_status in (*ERROR_STATUSES, 500), cls
        assert cls.http_status not in (404, 409, 429), cls
    # A new class that forgets part of its outcome is refused where it is written.
    with pytest.raises(TypeError, match="must state its own exit_status, http_status"):

        class _Incomplete(pushprov.InputError):
            code = "x"


@pytest.mark.parametrize("group", _GROUPS)
def test_groups_are_for_except_and_never_raised(group: type[PushprovError]) -> None:
    with pytest.raises(TypeError, match="groups errors"):
        group("anything")
    members = [cls for cls in error_classes() if issubclass(cls, group)]
    assert len(members) >= 5
    assert isinstance(members[0]("x"), group)


def test_groups_hold_what_the_issue_names() -> None:
    assert issubclass(pushprov.DecryptionFailedError, pushprov.InputError)
    assert issubclass(pushprov.SignatureInvalidError, pushprov.InputError)
    assert issubclass(pushprov.KeyUnusableError, pushprov.KeysError)
    assert issubclass(keys.KeyNotFoundError, pushprov.KeysError)
    assert issubclass(store.StoreUnavailableError, pushprov.StoreError)
    assert issubclass(keys.AuditTamperedError, pushprov.StoreError)
    assert not issubclass(pushprov.UsageError, (pushprov.InputError, pushprov.KeysError))


def test_help_epilog_lists_every_class_once() -> None:
    epilog = exit_status_epilog()
    for cls in error_classes():
        lines = [line for line in epilog.splitlines() if re.match(rf"^ +{cls.exit_status} +", line)]
        assert len(lines) == 1, cls
        assert lines[0].split()[1] == cls.code


def test_the_service_answers_with_the_class_outcome() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for cls in error_classes():
        answer = refusal(cls("a message of ours"), at, "req-1")
        assert answer.status == cls.http_status
        assert f'"errorResponseCode":"{cls.response_code}"'.encode() in answer.body
        assert (answer.headers.get("retry-after") == "1") == (cls.http_status == 503)


def test_an_echo_in_a_format_we_hold_no_keys_for_is_the_usage_outcome(tmp_path: Path) -> None:
    """The one way a caller reaches a UsageError: 400 INVALID_PAYLOAD, as it always was."""
    now = dt.datetime.now(dt.UTC)
    ours = openpgp.generate_key("i <i@x.example>", bits=2048, at=now)
    source = FileKeySource(signers=[ours], recipients=[ours.certificate])
    sender, receiver = jose.generate_jwk(bits=2048, at=now), jose.generate_jwk(bits=2048, at=now)
    echo = {
        "requestHeader": {"requestId": "e-1", "requestTimestamp": str(int(now.timestamp() * 1000))}
    }
    token = jose.seal_jwe(
        json.dumps(echo).encode(), sign_with=sender, encrypt_to=receiver.public(), at=now
    )
    with (
        running_server(tmp_path, source) as server,  # OpenPGP keys only
        server.client() as client,
    ):
        response = client.post(
            "/v1/echo", content=token, headers={"content-type": "application/jose"}
        )
    assert response.status_code == pushprov.UsageError.http_status == 400
    assert response.json()["errorResponseCode"] == pushprov.UsageError.response_code
