"""Prometheus metrics. Labels carry routes, statuses, key fingerprints and reason classes only.

With several worker processes, prometheus_client's multiprocess mode aggregates at scrape time
(``PROMETHEUS_MULTIPROC_DIR`` is set by ``serve`` before the workers start). prometheus_client
chooses its value store once, when it is imported; a single worker runs in the process that
imported it before the variable was set, so the mode is read from that choice, not the variable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from ..keys import KeyStatus, Partner

__all__ = ["Metrics"]


class Metrics:
    def __init__(self) -> None:
        self._registry = CollectorRegistry()
        registry = None if _multiprocess() else self._registry
        self.requests = Counter(
            "pushprov_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "pushprov_http_request_duration_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.seals = Counter(
            "pushprov_seals_total",
            "Signatures and encryptions made, by key fingerprint or kid and use",
            ["key", "use"],
            registry=registry,
        )
        self.open_failures = Counter(
            "pushprov_open_failures_total",
            "Inbound messages refused, by reason class",
            ["reason"],
            registry=registry,
        )
        self.overload = Counter(
            "pushprov_overload_rejections_total",
            "Requests answered 503 because the crypto queue was full",
            registry=registry,
        )
        self.canary_seals = Counter(
            "pushprov_canary_seals_total",
            "GOPCs sealed with a key on probation alone in its role, by key and use",
            ["key", "use"],
            registry=registry,
        )
        self.outcomes = Counter(
            "pushprov_gopc_outcomes_total",
            "Outcomes reported through /v1/gopc/outcomes, by what became of them",
            ["result"],
            registry=registry,
        )
        self.key_outcomes = Counter(
            "pushprov_key_outcomes_total",
            "Outcomes recorded for GOPCs each key sealed, by key, use and outcome",
            ["key", "use", "outcome"],
            registry=registry,
        )
        self.canary_stops = Counter(
            "pushprov_canary_stopped_total",
            "Canaries stopped by a rejection attributable to the key on probation",
            ["key", "use"],
            registry=registry,
        )
        self.last_use = Gauge(
            "pushprov_key_last_use_timestamp_seconds",
            "When each key was last used in each role (seal; for decrypt: a message opened)",
            ["key", "use"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.evidence = Gauge(
            "pushprov_key_evidence",
            "Each key's evidence as stored (all instances): uses, canary uses, outcomes, by use",
            ["key", "use", "count"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.partner_state = Gauge(
            "pushprov_key_partner_state",
            "1 for each key's state with the partner: canary, verified or stopped",
            ["key", "state"],
            multiprocess_mode="max",
            registry=registry,
        )
        self.expiry = Gauge(
            "pushprov_key_seconds_to_expiry",
            "Seconds until each key expires",
            ["key", "owner"],
            multiprocess_mode="max",
            registry=registry,
        )

        # Label lookups take a lock and build a tuple; the label sets are small and bounded
        # (routes x statuses, keys x uses), so each child is looked up once per worker.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self._child(self.requests, route, str(status)).inc()
        self._child(self.latency, route).observe(seconds)

    def count_seals(
        self, signers: Iterable[str], recipients: Iterable[str], canary: tuple[str, ...] = ()
    ) -> None:
        """One seal: the ids of the keys it signed with and encrypted to, and the roles in
        which it was a canary GOPC (one key alone, on probation)."""
        for key_id in signers:
            self._child(self.seals, key_id, "sign").inc()
            if "sign" in canary:
                self._child(self.canary_seals, key_id, "sign").inc()
        for key_id in recipients:
            self._child(self.seals, key_id, "encrypt").inc()
            if "encrypt" in canary:
                self._child(self.canary_seals, key_id, "encrypt").inc()

    def observe_evidence(self, inventory: Iterable[KeyStatus]) -> None:
        """At scrape time: each key's stored evidence (the store's, so every instance's) and
        its partner state; last use per key and role (for decrypt: a partner's message)."""
        for status in inventory:
            for state in Partner:
                self.partner_state.labels(status.id, state.value).set(
                    1 if status.partner == state.value else 0
                )
            for role, evidence in status.evidence:
                if evidence.last is not None:
                    self.last_use.labels(status.id, role).set(evidence.last)
                for count in ("sealed", "canary", "accepted", "rejected", "canary_accepted",
                              "canary_rejected"):  # fmt: skip
                    self.evidence.labels(status.id, role, count).set(getattr(evidence, count))

    def render(self) -> bytes:
        if _multiprocess():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self._registry)


def _multiprocess() -> bool:
    # Metrics write to the shared files only if prometheus_client saw the variable at import.
    return values.ValueClass is not values.MutexValue and bool(
        os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    )
