"""POST /v1/gopc/outcomes: what the issuer's app got back from Google, joined to the keys.

The issuer's backend reports, in batches, the outcome its app saw for each ``requestId``:
accepted, or rejected with Google's error code. Each outcome is matched to the answer this
service stored for that client and requestId (``ServiceState.record_outcome``), which names the
keys that sealed it; the first outcome for a live answer counts, once:

* recorded: added to each sealing key's evidence (accepted / rejected per role); for a canary
  GOPC (a key on probation sealed it alone in a role), to the canary's counts as well;
* duplicate (the same outcome again) and conflicting (another outcome; the first stands):
  counted, nothing added;
* late (the answer is older than ``outcome_window``), unknown (no such answer, or purged) and
  refused (another client's requestId: never trusted, and not told apart from unknown in what
  it returns but its own label): counted, nothing added.

Then the decisions, each one audited commit in the key store, so every worker and instance
agrees: a rejection of a canary GOPC attributable to the key on probation stops its canary at
once (``Partner.STOPPED``); ``canary_verify_after`` canary GOPCs accepted with none rejected
because of it make it verified with the partner (``Partner.VERIFIED``).

Which rejections a role can cause: Google's app-side codes that name the signature blame the
signing key, those that name decryption the encryption key, those about the session or the card
neither; any other code, or none, blames every role the GOPC was a canary for (a broken key
costs more than a canary stopped for nothing).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
from collections.abc import Sequence

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import APIRouter, Request
from pydantic import ValidationError

from .._card import parse_strict_json
from .._clock import as_unix
from .._errors import GopcInvalidError
from ..keys import Environment, Keystore, Partner, Role, RoleEvidence, Sealing
from ..store import OutcomeResult
from ._answers import TRANSPORT_ERRORS, UNKNOWN_CALLER, error, validation_error
from ._context import Context
from ._models import OutcomeItem, OutcomeReport, OutcomesRequest, OutcomesResponse

__all__ = ["OUTCOMES_PATH", "outcomes_router"]

log = logging.getLogger("pushprov.service")

OUTCOMES_PATH = "/v1/gopc/outcomes"

#: Rejection codes a role can cause (Google's app-side codes, and the sandbox's).
_BLAMES: dict[str, frozenset[str]] = {
    "sign": frozenset({"SIGNATURE_UNTRUSTED", "SIGNATURE_INVALID", "INVALID_SIGNATURE"}),
    "encrypt": frozenset({"DECRYPTION_FAILED", "INVALID_ENCRYPTION", "DECRYPTION_ERROR"}),
}
#: Rejection codes no key causes.
_NOT_THE_KEYS = frozenset(
    {"SESSION_UNKNOWN", "SESSION_EXPIRED", "SESSION_REUSED", "GOPC_INVALID", "CARD_DECLINED",
     "USER_CANCELLED", "MALFORMED", "POLICY_VIOLATION"}
)  # fmt: skip


def blamed_roles(code: str | None, canary: Sequence[str]) -> tuple[str, ...]:
    """The canary roles a rejection with ``code`` is attributable to."""
    if code in _NOT_THE_KEYS:
        return ()
    named = [role for role, codes in _BLAMES.items() if code in codes]
    return tuple(role for role in canary if role in named) if named else tuple(canary)


def outcomes_router(context: Context) -> APIRouter:
    router = APIRouter()
    # One report at a time per worker, off the event loop: every thread that records opens a
    # keystore of its own (a store connection, the passphrase's KDF: ~0.1 s, 32 MiB), so a
    # burst of reports must not fan out over AnyIO's 40 threads. Each report takes
    # milliseconds; its store writes are serialized by the store anyway.
    recording = CapacityLimiter(1)

    @router.post(
        OUTCOMES_PATH,
        response_model=OutcomesResponse,
        responses={**TRANSPORT_ERRORS, **UNKNOWN_CALLER},
        summary="Report what Google answered the app for GOPCs sealed here (batch)",
    )
    async def outcomes(request: Request) -> OutcomesResponse:
        client = context.callers.require(request.scope)
        at = context.clock()
        raw = await request.body()
        try:
            document = parse_strict_json(raw, what="request")
        except GopcInvalidError:
            raise error(400, "INVALID_FIELD_VALUE", "body is not valid JSON", at, None) from None
        try:
            batch = OutcomesRequest.model_validate(document)
        except ValidationError as invalid:
            raise validation_error(invalid.errors(), at) from None
        return await anyio.to_thread.run_sync(
            _record, context, client, batch.outcomes, at, limiter=recording
        )

    return router


@dataclasses.dataclass
class _Tally:
    """What one batch adds, per key and role, and which canaries it decides."""

    deltas: dict[str, list[tuple[Role, RoleEvidence]]] = dataclasses.field(default_factory=dict)
    stopped: dict[str, str] = dataclasses.field(default_factory=dict)  # key id -> role
    credited: set[str] = dataclasses.field(default_factory=set)  # canary keys accepted

    def add(self, sealing: Sealing, item: OutcomeItem, when: int) -> None:
        accepted = item.outcome == "accepted"
        blamed = () if accepted else blamed_roles(item.errorCode, sealing.canary)
        for role, ids in ((Role.SIGN, sealing.signed_with), (Role.ENCRYPT, sealing.encrypted_to)):
            canary = role.value in sealing.canary and len(ids) == 1
            for key_id in ids:
                if accepted:
                    delta = RoleEvidence(
                        accepted=1, canary_accepted=int(canary), last_accepted=when
                    )
                    if canary:
                        self.credited.add(key_id)
                else:
                    at_fault = canary and role.value in blamed
                    delta = RoleEvidence(
                        rejected=1, canary_rejected=int(at_fault), last_rejected=when
                    )
                    if at_fault:
                        self.stopped[key_id] = role.value
                self.deltas.setdefault(key_id, []).append((role, delta))


def _record(
    context: Context, client: str, items: Sequence[OutcomeItem], at: _dt.datetime
) -> OutcomesResponse:
    config, metrics = context.config, context.metrics
    since = at - config.outcome_window
    when = as_unix(at)
    tally = _Tally()
    reports: list[OutcomeReport] = []
    counts = {result.value: 0 for result in OutcomeResult}
    for item in items:
        stored = item.outcome if item.outcome == "accepted" else f"rejected:{item.errorCode or ''}"
        found = context.state.record_outcome(client, item.requestId, stored, since=since)
        canary: tuple[str, ...] = ()
        if found.result is OutcomeResult.RECORDED and found.keys is not None:
            sealing = Sealing.decode(found.keys)
            if sealing is not None:
                tally.add(sealing, item, when)
                canary = sealing.canary
        counts[found.result.value] += 1
        metrics.outcomes.labels(found.result.value).inc()
        reports.append(
            OutcomeReport(requestId=item.requestId, result=found.result.value, canary=list(canary))
        )
    keystore = context.keys.lifecycle()
    if keystore is not None and tally.deltas:
        _apply(context, keystore, tally, at)
    return OutcomesResponse(results=reports, counts=counts)


def _apply(context: Context, keystore: Keystore, tally: _Tally, at: _dt.datetime) -> None:
    env = Environment(context.config.env)
    metrics = context.metrics
    for key_id, deltas in tally.deltas.items():
        for role, delta in deltas:
            outcome = "accepted" if delta.accepted else "rejected"
            metrics.key_outcomes.labels(key_id, role.value, outcome).inc()
    stored = keystore.record_evidence(env, tally.deltas)
    changed = False
    for key_id, blamed in tally.stopped.items():
        stopped = keystore.set_partner(
            env, key_id, Partner.STOPPED, at=at,
            reason=f"a canary GOPC was rejected for a reason its {blamed} key causes",
        )  # fmt: skip
        if stopped is not None:
            changed = True
            metrics.canary_stops.labels(key_id, blamed).inc()
            log.warning("canary stopped", extra={"key": key_id, "role": blamed})
    # Keys still on probation as this worker last read them; set_partner checks again.
    on_probation = {key_id for _, key_id in context.current_keys(at).canaries}
    wanted = context.config.canary_verify_after
    for key_id in (tally.credited & on_probation) - set(tally.stopped):
        proof = stored.get(key_id, {}).values()
        accepted = sum(e.canary_accepted for e in proof)
        if accepted >= wanted and not any(e.canary_rejected for e in proof):
            verified = keystore.set_partner(
                env, key_id, Partner.VERIFIED, at=at,
                reason=f"{accepted} canary GOPCs sealed with it alone accepted by the partner, "
                "none rejected because of it",
            )  # fmt: skip
            changed = changed or verified is not None
    if changed:
        # This worker seals by the change from its next request on, not after its refresh:
        # a stopped canary key must not seal alone again, a verified one no longer alone.
        context.keys.invalidate()
