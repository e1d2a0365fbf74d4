"""The lifecycle rules as pure functions over records: allowed edges, checks, findings."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Sequence

from .._errors import UsageError
from ._errors import DrainWindowError, PartnerUnverifiedError, TransitionRefusedError
from ._evidence import Partner
from ._model import ALLOWED_EDGES, Format, KeyRecord, Role, State

__all__ = [
    "DEFAULT_DRAIN_WINDOW",
    "DEFAULT_EXPIRY_WARNING",
    "Finding",
    "findings",
    "key_warnings",
    "partner_use",
    "plan_transition",
]

DEFAULT_DRAIN_WINDOW = _dt.timedelta(days=7)
DEFAULT_EXPIRY_WARNING = _dt.timedelta(days=30)
_LIVE = (State.PENDING, State.ACTIVE, State.RETIRING)


@dataclasses.dataclass(frozen=True)
class Finding:
    """Something an operator must act on. ``code``: no_active_key, expiring, expired, drained,
    canary_stopped."""

    code: str
    message: str
    key_id: str | None = None


def plan_transition(
    records: Sequence[KeyRecord],
    key: KeyRecord,
    to: State,
    *,
    at: _dt.datetime,
    replacing: Sequence[KeyRecord] = (),
    force: bool = False,
    reason: str = "",
    drain_window: _dt.timedelta = DEFAULT_DRAIN_WINDOW,
) -> tuple[KeyRecord, ...]:
    """The records after moving ``key`` to ``to`` (and ``replacing`` to retiring), or an error."""
    if (key.state, to) not in ALLOWED_EDGES:
        allowed = sorted(b.value for a, b in ALLOWED_EDGES if a is key.state) or ["nothing"]
        raise TransitionRefusedError(
            f"key {key.key_id} is {key.state.value}: it may move to {', '.join(allowed)}, "
            f"not {to.value}"
        )
    for record in (key, *replacing):
        if at < record.changed:
            raise TransitionRefusedError(
                f"key {record.key_id} changed at {record.changed.isoformat()}, after the "
                "reference time: time may not go backwards"
            )
    if replacing and to is not State.ACTIVE:
        raise UsageError("only a promotion or rollback can replace another key")
    if to is State.ACTIVE:
        _check_activation(records, key, at, replacing)
    if to in (State.RETIRING, State.RETIRED):
        _check_successor_proven(records, key, force, reason)
    if to is State.RETIRED:
        _check_drained(key, at, force, reason, drain_window)
    moved = [_moved(key, to, at)]
    moved += [_moved(old, State.RETIRING, at) for old in replacing]
    return tuple(moved)


def _moved(record: KeyRecord, to: State, at: _dt.datetime) -> KeyRecord:
    return dataclasses.replace(
        record,
        state=to,
        transitions=(*record.transitions, (to, at)),
        has_secret=record.has_secret and to is not State.DESTROYED,
    )


def _check_activation(
    records: Sequence[KeyRecord], key: KeyRecord, at: _dt.datetime, replacing: Sequence[KeyRecord]
) -> None:
    if key.created > at:
        raise TransitionRefusedError(f"key {key.key_id} is not valid yet")
    if key.expired(at):
        raise TransitionRefusedError(f"key {key.key_id} is expired; it may not become active")
    replaced = {r.key_id for r in replacing}
    if key.key_id in replaced:
        raise UsageError("a key cannot replace itself")
    for old in replacing:
        if old.state is not State.ACTIVE or old.env is not key.env or not old.roles & key.roles:
            raise TransitionRefusedError(
                f"key {old.key_id} is not an active key in the same role; it cannot be replaced"
            )
    if key.format is Format.JWK:
        # JWE/JWS messages name one kid: the switch to a new key is one explicit, dated step.
        for other in records:
            if (
                other.format is Format.JWK
                and other.key_id != key.key_id
                and other.key_id not in replaced
                and other.state is State.ACTIVE
                and other.roles & key.roles
            ):
                raise TransitionRefusedError(
                    f"format jwk allows one active key per role and {other.key_id} is active; "
                    "name it as the key this one replaces"
                )


_OUTGOING = (Role.SIGN, Role.ENCRYPT)


def _check_successor_proven(
    records: Sequence[KeyRecord], key: KeyRecord, force: bool, reason: str
) -> None:
    """The last key of an outgoing role the partner has proven stays while a successor in
    that role is not verified with the partner: if the successor does not work alone, every
    GOPC would fail once the proven key is gone."""
    if not key.proven:
        return
    for role in _OUTGOING:
        if role not in key.roles:
            continue
        active = [
            r for r in records if r.key_id != key.key_id and role in r.roles
            and r.state is State.ACTIVE
        ]  # fmt: skip
        unproven = [r for r in active if not r.proven]
        if not unproven or any(r.proven for r in active):
            continue
        if force:
            if not reason.strip():
                raise UsageError("forcing out the last proven key needs a reason")
            continue
        successor = unproven[0]
        state = "not verified" if successor.partner is None else successor.partner.value
        raise PartnerUnverifiedError(
            f"key {key.key_id} is the last {role.value} key the partner has proven, and "
            f"{successor.key_id} ({state}) is not verified with the partner yet: wait for "
            "its canary, or force with a reason"
        )


def _drain_start(key: KeyRecord) -> _dt.datetime:
    left = key.entered(State.RETIRING) or key.changed
    return max(left, key.last_used) if key.last_used is not None else left


def _check_drained(
    key: KeyRecord, at: _dt.datetime, force: bool, reason: str, window: _dt.timedelta
) -> None:
    since = _drain_start(key)
    if at - since >= window:
        return
    if not force:
        remaining = since + window - at
        raise DrainWindowError(
            f"key {key.key_id} was active or used at {since.isoformat()}; messages for it may "
            f"still arrive for {_days(remaining)} (drain window {_days(window)}); "
            "wait, or force with a reason"
        )
    if not reason.strip():
        raise UsageError("forcing a key out inside its drain window needs a reason")


def _days(delta: _dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 24 else f"{hours:.1f} hours"


def key_warnings(
    record: KeyRecord,
    at: _dt.datetime,
    *,
    expiry_warning: _dt.timedelta = DEFAULT_EXPIRY_WARNING,
    drain_window: _dt.timedelta = DEFAULT_DRAIN_WINDOW,
) -> tuple[Finding, ...]:
    if record.state not in _LIVE:
        return ()
    out: list[Finding] = []
    if record.expired(at):
        out.append(Finding("expired", f"key {record.key_id} has expired", record.key_id))
    elif record.expires is not None and record.expires - at <= expiry_warning:
        out.append(
            Finding(
                "expiring",
                f"key {record.key_id} expires in {_days(record.expires - at)} "
                f"({record.expires.date().isoformat()})",
                record.key_id,
            )
        )
    if record.state is State.ACTIVE and record.partner is Partner.STOPPED:
        out.append(
            Finding(
                "canary_stopped",
                f"key {record.key_id}: its canary stopped, a GOPC sealed with it alone was "
                "rejected for a reason it causes; check the key the partner holds, then "
                "retire it or promote a new one",
                record.key_id,
            )
        )
    if record.state is State.RETIRING and at - _drain_start(record) >= drain_window:
        out.append(
            Finding(
                "drained",
                f"key {record.key_id} is past its drain window: retire it for good",
                record.key_id,
            )
        )
    return tuple(out)


def findings(
    records: Sequence[KeyRecord],
    at: _dt.datetime,
    *,
    expiry_warning: _dt.timedelta = DEFAULT_EXPIRY_WARNING,
    drain_window: _dt.timedelta = DEFAULT_DRAIN_WINDOW,
) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for role in Role:
        if not any(
            role in r.roles and r.state is State.ACTIVE and not r.expired(at) for r in records
        ):
            out.append(Finding("no_active_key", f"no usable active key for role {role.value}"))
    for record in records:
        out += key_warnings(record, at, expiry_warning=expiry_warning, drain_window=drain_window)
    return tuple(out)


def partner_use(records: Sequence[KeyRecord]) -> tuple[tuple[str, str, _dt.datetime | None], ...]:
    """For each live key the partner uses, when it last showed it did: (key id, how, when).

    Our decryption keys: the last message of the partner's we opened with it. A partner key
    we encrypt to: the last GOPC encrypted to it that the partner accepted. None: never seen
    (nobody should retire a key before knowing this)."""
    out: list[tuple[str, str, _dt.datetime | None]] = []
    for record in records:
        if record.state not in (State.ACTIVE, State.RETIRING):
            continue
        if Role.DECRYPT in record.roles:
            seen = record.evidence.get(Role.DECRYPT.value)
            last = None if seen is None else seen.last
            out.append((record.key_id, "last partner message opened with it", _when(last)))
        if Role.ENCRYPT in record.roles:
            seen = record.evidence.get(Role.ENCRYPT.value)
            last = None if seen is None else seen.last_accepted
            out.append((record.key_id, "last GOPC to it the partner accepted", _when(last)))
    return tuple(out)


def _when(unix: int | None) -> _dt.datetime | None:
    return None if unix is None else _dt.datetime.fromtimestamp(unix, _dt.UTC)
