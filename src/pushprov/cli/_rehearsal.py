"""``pushprov rehearse``: the whole flow on loopback, a rotation in both directions included.

An issuer key store and a sandbox (Google's side) key store are made in a throwaway directory;
keys are generated and exchanged; `pushprov serve` and `pushprov sandbox serve` start as real
TLS servers; traffic runs throughout (session from the sandbox -> GOPC from pushprov ->
acceptance by the sandbox -> the app's result reported back to pushprov, POST
/v1/gopc/outcomes) while an operator rotates the issuer's signing key and then the sandbox's
encryption key. Each new key is verified locally (the self-test), then with the partner: on
probation it seals a fraction of the GOPCs alone in its role, and only once the sandbox accepted
enough of them may the old key retire (an earlier attempt is refused, and the timeline shows
it). The report ends with the key timeline; the exit status is 1 if any GOPC failed or was
rejected.

With ``fault="sandbox-forgets-issuer-key"`` the sandbox never trusts the issuer's new key B: the
canary GOPCs signed by B alone are rejected, the first rejections reported stop the canary,
every GOPC is signed by A and B again, A stays in force (retiring it is refused), and no GOPC
outside the canary fails; the exit status is 1 unless all of that held.

With ``hsm``, the issuer's new key (Issuer-B) is made in a throwaway SoftHSM2 token (its own
``SOFTHSM2_CONF``, token directory and random PIN under the rehearsal's directory): the
rotation moves the signing role from a software key into the HSM while traffic flows, and the
issuer service signs and decrypts through PKCS#11 from then on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import os
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .. import hsm
from .._clock import now
from .._errors import UsageError
from ..keys import Environment, Keystore, Partner, PartnerUnverifiedError
from ..store import SqliteStore
from ._demo import random_test_pan

__all__ = ["FAULTS", "run_rehearsal"]

ENV = Environment.SANDBOX
DRAIN = _dt.timedelta(seconds=1)  # the 7-day drain window, compressed for the rehearsal
REFRESH_SECONDS = 0.2  # how often the servers re-read their keyring
# The canary, compressed like the drain window: a fifth of the GOPCs, ten accepted to verify.
CANARY_FRACTION = 0.2
CANARY_VERIFY_AFTER = 10
OUTCOME_BATCH = 8  # outcomes a traffic thread reports at once
PARTNER_TIMEOUT = 60.0  # seconds to wait for a canary's verdict
FAULTS = ("sandbox-forgets-issuer-key",)


@dataclasses.dataclass
class _Sample:
    started: float
    pushprov_ms: float
    total_ms: float
    status: int
    reason: str
    canary: bool = False  # sealed with a key on probation alone (as pushprov reported back)


@dataclasses.dataclass
class _Event:
    at: float
    side: str
    key: str
    change: str


# Where distributions put SoftHSM2's module (Debian/Ubuntu, multiarch, Fedora, source builds).
_SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
_SOFTHSM_LABEL = "rehearsal"


@dataclasses.dataclass(frozen=True)
class _Token:
    module: str
    uri: str
    env: dict[str, str]  # SOFTHSM2_CONF and pushprov's PKCS#11 configuration


def _throwaway_token(root: Path) -> _Token:
    """A SoftHSM2 token of its own under ``root``; a clear refusal when SoftHSM2 is absent."""
    util = shutil.which("softhsm2-util")
    module = next((m for m in _SOFTHSM_MODULES if Path(m).is_file()), None)
    if util is None or module is None:
        raise UsageError(
            "--hsm needs SoftHSM2 (softhsm2-util and libsofthsm2.so; Debian/Ubuntu: "
            "apt-get install softhsm2); or rehearse without --hsm"
        )
    home = root / "softhsm"
    tokens = home / "tokens"
    tokens.mkdir(parents=True, mode=0o700)
    conf = home / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
    pin, so_pin = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    pin_file = home / "pin"
    pin_file.touch(mode=0o600)
    pin_file.write_text(pin + "\n")
    env = {
        "SOFTHSM2_CONF": str(conf),
        hsm.TokenCustody.MODULE_ENV: module,
        hsm.TokenCustody.PIN_SOURCE_ENV: f"file:{pin_file}",
    }
    # softhsm2-util takes the PINs as arguments: random, for a token that lives minutes.
    init = [util, "--init-token", "--free", "--label", _SOFTHSM_LABEL]
    subprocess.run(
        [*init, "--pin", pin, "--so-pin", so_pin],
        env={**os.environ, **env}, check=True, capture_output=True,
    )  # fmt: skip
    return _Token(module, f"pkcs11:token={_SOFTHSM_LABEL};object=issuer-b", env)


class _Rehearsal:
    def __init__(
        self, root: Path, bits: int, step_seconds: float, fault: str | None, token: _Token | None
    ) -> None:
        self.root = root
        self.fault = fault
        self.bits = bits
        self.step_seconds = step_seconds
        self.token = token
        self.passphrase = secrets.token_urlsafe(24)
        self.env = {**os.environ, "PUSHPROV_STORE_PASSPHRASE": self.passphrase}
        if token is not None:
            self.env.update(token.env)
        self.samples: list[_Sample] = []
        self.events: list[_Event] = []
        self.started = time.monotonic()
        self.labels: dict[str, str] = {}
        self.crashes: list[str] = []  # traffic threads that died, and why
        self.fault_started = float("inf")  # perf_counter when the faulty key came into use
        for side in ("issuer", "sandbox"):
            (root / side).mkdir(mode=0o700)

    # -- keys -------------------------------------------------------------------------------

    def keystore(self, side: str) -> Keystore:
        store = SqliteStore.open(
            self.root / side / "keystore.db", passphrase=self.passphrase.encode(), create=True
        )
        custody = None
        if self.token is not None:
            custody = hsm.TokenCustody.from_environment(self.token.env)
        return Keystore(store, actor=f"rehearsal-{side}", drain_window=DRAIN, custody=custody)

    def note(self, side: str, key: str, change: str) -> None:
        self.events.append(_Event(time.monotonic() - self.started, side, self.labels[key], change))

    def generate(self, side: str, label: str, *, in_token: bool = False) -> str:
        uri = self.token.uri if in_token and self.token is not None else None
        with contextlib.closing(self.keystore(side)) as keystore:
            record = keystore.generate(
                ENV, user_id=f"{label} <{label.lower()}@{side}.example>", bits=self.bits,
                at=now(), hsm_uri=uri,
            )  # fmt: skip
        self.labels[record.key_id] = label
        where = "in the SoftHSM2 token " if uri is not None else ""
        self.note(side, record.key_id, f"generated {where}(pending)")
        return record.key_id

    def hand_over(self, key_id: str, source: str, target: str, owner: str) -> None:
        """Export a public key from one side and import it (pending) on the other."""
        with contextlib.closing(self.keystore(source)) as keystore:
            public = keystore.export(ENV, key_id, at=now())
        with contextlib.closing(self.keystore(target)) as keystore:
            keystore.import_key(ENV, public, at=now(), owner=owner)
        self.note(target, key_id, f"imported from the {source} (pending)")

    def promote(self, side: str, key_id: str, replacing: tuple[str, ...] = ()) -> None:
        with contextlib.closing(self.keystore(side)) as keystore:
            keystore.promote(ENV, key_id, at=now(), replacing=replacing, reason="rehearsal")
        self.note(side, key_id, "self-test passed (verified) -> active")
        for old in replacing:
            self.note(side, old, "active -> retiring")

    def retire(self, side: str, key_id: str, *, final: bool) -> None:
        with contextlib.closing(self.keystore(side)) as keystore:
            keystore.retire(ENV, key_id, at=now(), final=final, reason="rehearsal")
        self.note(side, key_id, "retiring -> retired" if final else "active -> retiring")

    def retire_refused(self, key_id: str, successor: str) -> None:
        """The rule in action: the last proven key stays while its successor is unverified."""
        try:
            with contextlib.closing(self.keystore("issuer")) as keystore:
                keystore.retire(ENV, key_id, at=now(), reason="rehearsal")
        except PartnerUnverifiedError:
            self.note("issuer", key_id, f"retire refused: {self.labels[successor]} is not "
                      "verified with the partner yet (partner_unverified)")  # fmt: skip
            return
        raise RuntimeError("retiring the last proven key was not refused")

    def partner(self, key_id: str) -> Partner | None:
        with contextlib.closing(self.keystore("issuer")) as keystore:
            return keystore.snapshot(ENV).record(key_id).partner

    def await_partner(self, key_id: str, *, until: Partner) -> None:
        """Wait for the issuer's service to decide a canary from the sandbox's outcomes."""
        deadline = time.monotonic() + PARTNER_TIMEOUT
        while (state := self.partner(key_id)) is Partner.CANARY:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partner verdict on {self.labels[key_id]} in time")
            time.sleep(0.1)
        if state is not until:
            raise RuntimeError(f"{self.labels[key_id]} is {state}, expected {until.value}")
        with contextlib.closing(self.keystore("issuer")) as keystore:
            record = keystore.snapshot(ENV).record(key_id)
        proof = sum(e.canary_accepted for e in record.evidence.values())
        blame = sum(e.canary_rejected for e in record.evidence.values())
        if until is Partner.VERIFIED:
            change = f"verified with the partner ({proof} canary GOPCs accepted, none rejected)"
        else:
            change = f"canary stopped ({blame} canary GOPC(s) rejected because of it)"
        self.note("issuer", key_id, change)

    def settle(self) -> None:
        """Long enough for both servers to re-read their keyrings and for traffic to flow."""
        time.sleep(max(self.step_seconds, 5 * REFRESH_SECONDS))

    # -- servers ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def server(self, *args: str, data: Path, port: int) -> Iterator[ssl.SSLContext]:
        log_path = data / f"{args[0]}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "pushprov", *args, "--port", str(port),
                 "--data-dir", str(data)],
                env={**self.env, "PUSHPROV_KEY_REFRESH_SECONDS": str(REFRESH_SECONDS),
                     "PUSHPROV_LOG_LEVEL": "warning",
                     "PUSHPROV_CANARY_FRACTION": str(CANARY_FRACTION),
                     "PUSHPROV_CANARY_VERIFY_AFTER": str(CANARY_VERIFY_AFTER),
                     # One client drives all the traffic; the per-client limit is not under test.
                     "PUSHPROV_RATE_LIMIT_PER_SECOND": "100000"},
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        try:
            yield self._wait_ready(process, data, port, log_path)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()

    @staticmethod
    def _wait_ready(
        process: subprocess.Popen[bytes], data: Path, port: int, log_path: Path
    ) -> ssl.SSLContext:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError, httpx.TransportError):
                context = ssl.create_default_context(cafile=str(data / "dev-tls.crt"))
                if httpx.get(f"https://127.0.0.1:{port}/livez", verify=context).status_code == 200:
                    return context
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a server did not start: {log_path.read_text()[-800:]}")
            time.sleep(0.1)

    # -- traffic ----------------------------------------------------------------------------

    def traffic(
        self, pushprov: httpx.Client, sandbox: httpx.Client, stop: threading.Event, pan: str
    ) -> None:
        try:
            self._traffic(pushprov, sandbox, stop, pan)
        except Exception as failure:  # a thread that died must fail the rehearsal, visibly
            self.crashes.append(f"{type(failure).__name__}: {failure}"[:300])
            raise

    def _traffic(
        self, pushprov: httpx.Client, sandbox: httpx.Client, stop: threading.Event, pan: str
    ) -> None:
        pending: dict[str, tuple[_Sample, Any]] = {}
        index = 0
        while not stop.is_set():
            index += 1
            started = time.perf_counter()
            session = sandbox.post("/v1/sessions").json()["serverSessionId"]
            body = {
                "requestHeader": {
                    "requestId": f"rehearsal-{threading.get_ident() % 10000}-{index}",
                    "requestTimestamp": str(int(time.time() * 1000)),
                },
                "serverSessionId": session,
                "card": {"accountNumber": pan, "expiryMonth": "12", "expiryYear": "29"},
            }
            sealing = time.perf_counter()
            response = pushprov.post("/v1/gopc", json=body)
            pushprov_ms = (time.perf_counter() - sealing) * 1000
            reason = f"HTTP {response.status_code} from pushprov"
            sample = _Sample(started, pushprov_ms, 0.0, response.status_code, reason)
            if response.status_code == 200:
                gopc = response.json()["googleOpaquePaymentCard"]
                verdict = sandbox.post("/v1/gopc", json={"googleOpaquePaymentCard": gopc}).json()
                sample.reason = verdict["reasonCode"]
                # The app's result, as the issuer's backend reports it to pushprov.
                pending[body["requestHeader"]["requestId"]] = (sample, verdict["appResult"])
            sample.total_ms = (time.perf_counter() - started) * 1000
            self.samples.append(sample)
            if len(pending) >= OUTCOME_BATCH:
                self.report(pushprov, pending)
        self.report(pushprov, pending)

    @staticmethod
    def report(pushprov: httpx.Client, pending: dict[str, tuple[_Sample, Any]]) -> None:
        """POST /v1/gopc/outcomes; pushprov says which GOPCs were canary GOPCs."""
        if not pending:
            return
        items = [
            {"requestId": request_id, **{k: v for k, v in result.items() if v is not None}}
            for request_id, (_, result) in pending.items()
        ]
        answer = pushprov.post("/v1/gopc/outcomes", json={"outcomes": items})
        answer.raise_for_status()
        for report in answer.json()["results"]:
            pending[report["requestId"]][0].canary = bool(report["canary"])
        pending.clear()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):.1f} ms, p90 {pick(0.9):.1f} ms, p99 {pick(0.99):.1f} ms"
    )


def run_rehearsal(
    *,
    bits: int = 2048,
    step_seconds: float = 1.5,
    clients: int = 2,
    fault: str | None = None,
    hsm: bool = False,
) -> tuple[bytes, int]:
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}")
    root = Path(tempfile.mkdtemp(prefix="pushprov-rehearsal-"))
    root.chmod(0o700)
    try:
        token = _throwaway_token(root) if hsm else None
        if token is not None:
            # This process makes and self-tests the token key too: SoftHSM2 reads its
            # configuration when the module is first loaded, which is after this point.
            os.environ["SOFTHSM2_CONF"] = token.env["SOFTHSM2_CONF"]
        return _run(_Rehearsal(root, bits, step_seconds, fault, token), clients)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(r: _Rehearsal, clients: int) -> tuple[bytes, int]:
    a, s1 = _first_keys(r)
    api_key = subprocess.run(
        [sys.executable, "-m", "pushprov", "clients", "add", "rehearsal",
         "--data-dir", str(r.root / "issuer")],
        env=r.env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    pan = random_test_pan().reveal()
    issuer_port, sandbox_port = _free_port(), _free_port()
    with (
        r.server("serve", "--store", str(r.root / "issuer" / "keystore.db"), "--workers", "2",
                 data=r.root / "issuer", port=issuer_port) as issuer_tls,
        r.server("sandbox", "serve", "--store", str(r.root / "sandbox" / "keystore.db"),
                 data=r.root / "sandbox", port=sandbox_port) as sandbox_tls,
        # Entered last, so left first: the clients close before the servers stop (an idle
        # keep-alive connection would hold up a server's graceful shutdown for its grace period).
        contextlib.ExitStack() as connections,
    ):  # fmt: skip
        stop = threading.Event()
        threads = []
        for _ in range(clients):
            pushprov = connections.enter_context(httpx.Client(
                base_url=f"https://127.0.0.1:{issuer_port}", verify=issuer_tls, timeout=30,
                headers={"authorization": f"Bearer {api_key}"},
            ))  # fmt: skip
            sandbox = connections.enter_context(httpx.Client(
                base_url=f"https://127.0.0.1:{sandbox_port}", verify=sandbox_tls, timeout=30
            ))  # fmt: skip
            thread = threading.Thread(
                target=r.traffic, args=(pushprov, sandbox, stop, pan), daemon=True
            )
            thread.start()
            threads.append(thread)
        traffic_started = time.monotonic()
        _rotations(r, a, s1)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - traffic_started
    for side in ("issuer", "sandbox"):
        with contextlib.closing(r.keystore(side)) as keystore:
            keystore.verify_audit(ENV)  # raises if the audit chain does not replay
    if r.fault is not None:
        return _fault_report(r, elapsed, a)
    return _report(r, elapsed)


def _rotations(r: _Rehearsal, a: str, s1: str) -> None:
    r.settle()
    # The first keys are alone in their roles: every GOPC is a canary GOPC for both.
    r.await_partner(a, until=Partner.VERIFIED)
    r.await_partner(s1, until=Partner.VERIFIED)
    if r.fault == "sandbox-forgets-issuer-key":
        _issuer_key_the_sandbox_forgot(r, a)
    else:
        _rotate_issuer_key(r, a)
        _rotate_sandbox_key(r, s1)


def _first_keys(r: _Rehearsal) -> tuple[str, str]:
    """The issuer's signing key A, the sandbox's encryption key S1, exchanged and verified."""
    a = r.generate("issuer", "Issuer-A")
    s1 = r.generate("sandbox", "Sandbox-S1")
    r.promote("issuer", a)
    r.promote("sandbox", s1)
    r.hand_over(s1, "sandbox", "issuer", owner="google")
    r.hand_over(a, "issuer", "sandbox", owner="issuer")
    r.promote("issuer", s1)
    r.promote("sandbox", a)
    return a, s1


def _rotate_issuer_key(r: _Rehearsal, a: str) -> None:
    """A -> B. The sandbox trusts B before the issuer signs with it; B signs a fraction of the
    GOPCs alone until the sandbox accepted enough of them; only then may A retire, and A
    leaves the sandbox's trust only after the issuer stopped using it."""
    b = r.generate("issuer", "Issuer-B", in_token=True)
    r.hand_over(b, "issuer", "sandbox", owner="issuer")
    r.promote("sandbox", b)
    r.settle()
    r.promote("issuer", b)
    r.note("issuer", b, "on probation: signs a canary fraction of the GOPCs alone")
    _retire_once_proven(r, a, b)


def _rotate_sandbox_key(r: _Rehearsal, s1: str) -> None:
    """S1 -> S2. The sandbox can decrypt with S2 before the issuer encrypts to it; S2 proves
    itself alone on a fraction of the GOPCs before S1 may go; S1 is retired on the sandbox only
    after the issuer dropped it."""
    s2 = r.generate("sandbox", "Sandbox-S2")
    r.promote("sandbox", s2)
    r.hand_over(s2, "sandbox", "issuer", owner="google")
    r.settle()
    r.promote("issuer", s2)
    r.note("issuer", s2, "on probation: a canary fraction of the GOPCs is encrypted to it alone")
    _retire_once_proven(r, s1, s2)


def _retire_once_proven(r: _Rehearsal, old: str, new: str) -> None:
    """The end of either rotation: ``old`` may not retire until ``new`` is verified with the
    partner; then the issuer drops it first, the sandbox after the drain."""
    r.retire_refused(old, new)
    r.await_partner(new, until=Partner.VERIFIED)
    r.retire("issuer", old, final=False)
    r.settle()
    r.retire("issuer", old, final=True)
    r.retire("sandbox", old, final=False)
    r.settle()
    r.retire("sandbox", old, final=True)
    r.settle()


def _issuer_key_the_sandbox_forgot(r: _Rehearsal, a: str) -> None:
    """A -> B, but the sandbox never trusts B (the certificate was handed over and not
    imported): B's canary GOPCs are rejected, its canary stops, A stays in force."""
    b = r.generate("issuer", "Issuer-B")
    r.note("sandbox", b, "never imported from the issuer (the fault)")
    r.settle()
    r.fault_started = time.perf_counter()
    r.promote("issuer", b)
    r.note("issuer", b, "on probation: signs a canary fraction of the GOPCs alone")
    r.await_partner(b, until=Partner.STOPPED)
    r.retire_refused(a, b)
    r.settle()  # traffic on, every GOPC signed by A and B again


def _canary_figures(r: _Rehearsal, since: float = 0.0) -> tuple[int, int, int, int]:
    """Canary GOPCs, of them accepted and rejected, and GOPCs outside the canary that failed,
    among those sent from ``since`` (``perf_counter``) on."""
    samples = [s for s in r.samples if s.started >= since]
    canary = [s for s in samples if s.canary]
    accepted = sum(1 for s in canary if s.reason == "ACCEPTED")
    outside = sum(1 for s in samples if not s.canary and s.reason != "ACCEPTED")
    return len(canary), accepted, len(canary) - accepted, outside


def _fault_report(r: _Rehearsal, elapsed: float, a: str) -> tuple[bytes, int]:
    canary, accepted, rejected, outside = _canary_figures(r, r.fault_started)
    _, _, _, outside_before = _canary_figures(r)
    total = sum(1 for s in r.samples if s.started >= r.fault_started)
    still = r.partner(a)
    with contextlib.closing(r.keystore("issuer")) as keystore:
        a_state = keystore.snapshot(ENV).record(a).state.value
    lines = [
        f"pushprov rehearsal, fault {r.fault}: issuer service + Google sandbox over TLS",
        f"  traffic      {len(r.samples)} GOPCs in {elapsed:.1f} s "
        f"({len(r.samples) / elapsed:.1f}/s); {total} of them once Issuer-B was on probation:",
        f"  canary       {canary} canary GOPCs (signed by Issuer-B alone), accepted {accepted}, "
        f"rejected {rejected}",
        f"  outside      {total - canary} GOPCs outside the canary, failed {outside}",
        f"  old key      Issuer-A {a_state}, partner {still.value if still else '-'}",
        *_problems_and_timeline(r),
    ]
    ok = rejected > 0 and outside == outside_before == 0 and a_state == "active"
    ok = ok and total > canary and not r.crashes
    return _verdict(r, lines, ok=ok, good="rehearsal ok (the canary caught the fault)")


def _report(r: _Rehearsal, elapsed: float) -> tuple[bytes, int]:
    total = len(r.samples)
    accepted = sum(1 for s in r.samples if s.reason == "ACCEPTED")
    failed = sum(1 for s in r.samples if s.status != 200)
    lines = [
        "pushprov rehearsal: issuer service + Google sandbox on loopback over TLS",
        *_hsm_line(r),
        f"  traffic      {total} GOPCs in {elapsed:.1f} s ({total / elapsed:.1f}/s), "
        f"accepted {accepted}, rejected {total - accepted - failed}, failed {failed}",
        f"  pushprov     {_percentiles([s.pushprov_ms for s in r.samples])} (POST /v1/gopc)",
        f"  end to end   {_percentiles([s.total_ms for s in r.samples])} "
        "(session + GOPC + acceptance)",
        _canary_line(r),
        *_problems_and_timeline(r),
    ]
    return _verdict(r, lines, ok=total > 0 and accepted == total and not r.crashes)


def _verdict(
    r: _Rehearsal, lines: list[str], *, ok: bool, good: str = "rehearsal ok"
) -> tuple[bytes, int]:
    if not ok:
        lines += _server_errors(r)
    lines.append(good if ok else "REHEARSAL FAILED")
    return ("\n".join(lines) + "\n").encode(), 0 if ok else 1


def _canary_line(r: _Rehearsal) -> str:
    canary, accepted, rejected, outside = _canary_figures(r)
    return (
        f"  canary       {canary} canary GOPCs, accepted {accepted}, rejected {rejected}; "
        f"outside the canary, failed {outside}"
    )


def _hsm_line(r: _Rehearsal) -> list[str]:
    if r.token is None:
        return []
    return [f"  hsm          Issuer-B in a throwaway SoftHSM2 token ({r.token.module})"]


def _problems_and_timeline(r: _Rehearsal) -> list[str]:
    lines: list[str] = []
    reasons = sorted({s.reason for s in r.samples if s.reason != "ACCEPTED"})
    if reasons:
        lines.append(f"  problems     {', '.join(reasons)}")
    lines += [f"  traffic thread died: {crash}" for crash in r.crashes]
    lines.append(
        "  key timeline (seconds from start; every promotion ran its self-test first, then "
        "the partner's canary)"
    )
    for event in r.events:
        lines.append(f"    {event.at:6.1f}  {event.side:8} {event.key:11} {event.change}")
    return lines


def _server_errors(r: _Rehearsal) -> list[str]:
    """The servers' last error lines, so that a failed rehearsal says what the servers met:
    the data directory is deleted after. The log's JSON lines carry an exception's type, not
    its text, and mask card-number-like digit runs; the rehearsal's card is a test number."""
    lines = []
    for side, name in (("issuer", "serve"), ("sandbox", "sandbox")):
        with contextlib.suppress(OSError):
            text = (r.root / side / f"{name}.log").read_text(errors="replace")
            errors = [line for line in text.splitlines() if '"level":"error"' in line]
            lines += [f"  {side} log   {line[:300]}" for line in errors[-5:]]
    return lines
