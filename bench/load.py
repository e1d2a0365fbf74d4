"""Load test of the HTTPS service on loopback, against the in-process seal rate, same run.

Sets up a throwaway data directory (key store with an active issuer key and an active stand-in
Google key, one API client), starts `pushprov serve` with one worker per core, and drives it
with wrk (a separate C process, so the load generator takes little CPU from the server):

1. in-process: the seal rate of `seal_gopc` in one process per core, summed;
2. capacity: wrk closed-loop, enough connections to keep every worker busy; 1 and 2 are
   taken in turns (``--rounds``, 3), and the ratio is of their means;
3. 80 %: wrk paced to 80 % of that capacity (the share reached is printed): p50/p99
   latency (target p99 < 50 ms);
4. overload: wrk paced to twice the capacity, twice in a row: 503s must be fast (a probe
   times them), no other 5xx, memory flat across the two rounds.

Every run ends by itself (wrk -d). Prints `RESULT` lines and a JSON summary.
``--capacity-only`` stops after 2: what comparing two ways of hosting the service needs.
``--hsm`` makes the issuer key in a throwaway SoftHSM2 token (its own SOFTHSM2_CONF): the
service then signs through PKCS#11, one session per worker; the in-process rate stays the
software key's, so the ratio is the token-backed capacity against software seals.
Usage: python bench/load.py [--seconds 10] [--bits 3072] [--rounds 3] [--capacity-only] [--hsm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pushprov
from pushprov import openpgp
from pushprov.cli._demo import random_test_pan

HERE = Path(__file__).resolve().parent
PUSHPROV = [sys.executable, "-m", "pushprov"]


def _run(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [*PUSHPROV, *args], env=env, capture_output=True, check=False, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"pushprov {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seal_rate(bits: int, seconds: float, queue: Any) -> None:
    at = dt.datetime.now(dt.UTC)
    issuer = openpgp.generate_key("i <i@x.example>", bits=bits, at=at)
    google = openpgp.generate_key("g <g@x.example>", bits=bits, at=at)
    card = pushprov.Card(random_test_pan(), "12", "29")
    gopc = pushprov.Gopc(server_session_id="bench-session", card=card)
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        pushprov.seal_gopc(gopc, sign_with=[issuer], encrypt_to=[google.certificate], at=at)
        count += 1
    queue.put(count / (time.perf_counter() - start))


def in_process_rate(bits: int, seconds: float, processes: int) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_seal_rate, args=(bits, seconds, queue)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    rates = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    return float(sum(rates))


def _worker_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) each child of ``pid`` (the workers) has used so far.

    CPU per request is steadier than requests per second on a shared host: a neighbour's load
    takes time slices from the workers but adds little to the work each request costs.
    """
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children")
    seconds = {}
    for each in children.read_text().split() if children.exists() else []:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        seconds[int(each)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return seconds


def _rss_kib(pid: int) -> int:
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


class _Probe(threading.Thread):
    """Sequential requests alongside the overload, timing each answer by its status."""

    def __init__(self, url: str, context: ssl.SSLContext, api_key: str, pan: str) -> None:
        super().__init__(daemon=True)
        self._stop_event = threading.Event()
        self.samples: list[tuple[int, float]] = []
        self._url, self._context, self._key, self._pan = url, context, api_key, pan

    def run(self) -> None:
        # One keep-alive connection, as a backend's pool would hold: the time measured is the
        # request's, not a TLS handshake's.
        parsed = urllib.parse.urlsplit(self._url)
        connection = http.client.HTTPSConnection(
            parsed.hostname or "127.0.0.1", parsed.port, context=self._context, timeout=10
        )
        index = 0
        while not self._stop_event.is_set():
            index += 1
            stamp = str(int(time.time() * 1000))
            body = json.dumps(
                {
                    "requestHeader": {"requestId": f"probe-{index}", "requestTimestamp": stamp},
                    "serverSessionId": "probe",
                    "card": {"accountNumber": self._pan, "expiryMonth": "12", "expiryYear": "29"},
                }
            ).encode()
            headers = {"authorization": f"Bearer {self._key}", "content-type": "application/json"}
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/gopc", body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException):
                status = 0
                connection.close()  # reconnects on the next request
            self.samples.append((status, time.perf_counter() - started))
            time.sleep(0.02)
        connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)

    def summary(self) -> dict[str, Any]:
        by_status: dict[int, list[float]] = {}
        for status, latency in self.samples:
            by_status.setdefault(status, []).append(latency)

        def percentile(status: int, q: float) -> float | None:
            times = sorted(by_status.get(status, ()))
            if not times:
                return None
            return round(times[min(len(times) - 1, int(q * len(times)))] * 1000, 2)

        return {
            "samples": len(self.samples),
            "statuses": sorted(by_status),
            "p50_503_ms": percentile(503, 0.5),
            "p99_503_ms": percentile(503, 0.99),
            # The served requests of the same probe, for comparison: they wait in the queue.
            "p50_200_ms": percentile(200, 0.5),
            "p99_200_ms": percentile(200, 0.99),
        }


def wrk(
    url: str,
    *,
    connections: int,
    seconds: float,
    env: dict[str, str],
    delay_ms: float = 0,
    count_statuses: bool = True,
) -> dict[str, Any]:
    """One wrk run. Without ``count_statuses``, statuses are only "2xx-3xx" and "4xx-5xx"
    (cheaper for wrk); the service answers /v1/gopc with 200 or an error, so the first are
    the sealed cards."""
    env = {
        **env,
        "PUSHPROV_BENCH_COUNT_STATUSES": "1" if count_statuses else "0",
        "PUSHPROV_BENCH_DELAY_MS": f"{max(delay_ms, 0):.1f}",
        # A fresh requestId prefix per run: a repeated id would be an idempotent replay (or 409).
        "PUSHPROV_BENCH_TAG": env.get("PUSHPROV_BENCH_TAG", "bench") + f"{time.monotonic_ns()}",
    }
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
         "-s", str(HERE / "gopc.lua"), url],
        env=env, capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    line = next(row for row in result.stdout.splitlines() if row.startswith("BENCH "))
    report: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    report["rate"] = report["requests"] / report["seconds"]
    ok = report["statuses"].get("200" if count_statuses else "2xx-3xx", 0)
    report["ok_rate"] = ok / report["seconds"]
    return report


_SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def _throwaway_token(data: Path, env: dict[str, str]) -> list[str]:
    """A SoftHSM2 token under ``data``, its configuration added to ``env``; the option that
    makes the issuer key in it."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(_SOFTHSM_MODULE).is_file():
        raise SystemExit("--hsm needs SoftHSM2: apt-get install softhsm2")
    (data / "tokens").mkdir(mode=0o700)
    conf = data / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {data / 'tokens'}\nlog.level = ERROR\n")
    pin = data / "pin"
    pin.write_text("bench-pin\n")
    env.update(
        SOFTHSM2_CONF=str(conf),
        PUSHPROV_PKCS11_MODULE=_SOFTHSM_MODULE,
        PUSHPROV_PKCS11_PIN_SOURCE=f"file:{pin}",
    )
    init = ["--init-token", "--free", "--label", "bench", "--pin", "bench-pin"]
    subprocess.run([util, *init, "--so-pin", "bench-so"], env=env, check=True, capture_output=True)
    return ["--hsm", "pkcs11:token=bench;object=issuer"]


def _report_capacity(
    bits: int,
    baseline: float,
    capacity: dict[str, Any],
    rounds: list[tuple[float, Any]],
    *,
    hsm: bool = False,
) -> None:
    ratio = capacity["ok_rate"] / baseline
    each = " ".join(f"{measured['ok_rate'] / in_process:.3f}" for in_process, measured in rounds)
    rates = " ".join(f"{measured['ok_rate']:.1f}" for _, measured in rounds)
    cpu = " ".join(f"{measured['cpu_us_per_request']:.0f}" for _, measured in rounds)
    busiest = " ".join(f"{measured['busiest_worker_share']:.2f}" for _, measured in rounds)
    print(
        f"RESULT service-capacity-{bits}{'-hsm' if hsm else ''} {capacity['ok_rate']:.1f} "
        f"{ratio:.2f} "
        f"errors={capacity['errors']} rounds={each} per_round={rates} "
        f"in_process={baseline:.1f} cpu_us_per_request={cpu} busiest_worker_share={busiest}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bits", type=int, default=3072)
    parser.add_argument("--rounds", type=int, default=3, help="in-process/capacity pairs")
    parser.add_argument(
        "--capacity-only", action="store_true", help="stop after the capacity rounds"
    )
    parser.add_argument(
        "--hsm", action="store_true", help="the issuer key in a throwaway SoftHSM2 token"
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    cores = os.cpu_count() or 1
    data = Path(tempfile.mkdtemp(prefix="pushprov-load-"))
    data.chmod(0o700)
    env = {
        **os.environ,
        "PUSHPROV_STORE_PASSPHRASE": "bench passphrase",
        "PUSHPROV_DATA_DIR": str(data),
    }
    store = str(data / "keystore.db")
    hsm_option = _throwaway_token(data, env) if args.hsm else []
    try:
        common = ["--store", store, "--env", "sandbox", "--json"]
        ours = json.loads(
            _run(
                "keys",
                "generate",
                *common,
                "--uid",
                "Bench issuer <b@issuer.example>",
                "--bits",
                str(args.bits),
                *hsm_option,
                env=env,
            )
        )
        google = openpgp.generate_key(
            "Bench Google <b@google.example>", bits=args.bits, at=dt.datetime.now(dt.UTC)
        )
        (data / "google.pub.asc").write_text(google.certificate.armor())
        theirs = json.loads(_run("keys", "import", *common, str(data / "google.pub.asc"), env=env))
        for record in (theirs, ours):
            _run("keys", "promote", *common, record["key_id"], env=env)
        api_key = _run("clients", "add", "bench", "--data-dir", str(data), env=env).strip()
        port = _free_port()
        url = f"https://127.0.0.1:{port}"
        server = subprocess.Popen(
            [*PUSHPROV, "serve", "--store", store, "--port", str(port),
             "--workers", str(cores), "--data-dir", str(data)],
            env={**env, "PUSHPROV_RATE_LIMIT_PER_SECOND": "1000000",
                 "PUSHPROV_LOG_LEVEL": "warning"},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    context = ssl.create_default_context(cafile=str(data / "dev-tls.crt"))
                    with urllib.request.urlopen(
                        f"{url}/readyz", context=context, timeout=2
                    ) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("server did not become ready") from None
                    time.sleep(0.2)
            wrk_env = {
                **env,
                "PUSHPROV_BENCH_KEY": api_key,
                "PUSHPROV_BENCH_PAN": random_test_pan().reveal(),
            }
            wrk(url, connections=4, seconds=2, env=wrk_env)  # warm-up
            # In-process rate and capacity in turns: the machine's speed drifts over minutes
            # (shared host), and each ratio compares two measurements taken next to each other.
            rounds = []
            for _ in range(args.rounds):
                in_process = in_process_rate(args.bits, args.seconds, cores)
                # 8 per worker: each worker seals the requests it has waiting, in batches on its
                # loop, so it stays busy only while some of its connections have one waiting.
                cpu_before = _worker_cpu_seconds(server.pid)
                measured = wrk(
                    url,
                    connections=8 * cores,
                    seconds=args.seconds,
                    env=wrk_env,
                    count_statuses=False,
                )
                # A worker replaced during the round (uvicorn restarts one that misses its
                # health check) is left out: its counters started again.
                cpu_after = _worker_cpu_seconds(server.pid)
                used = [cpu_after[pid] - cpu_before[pid] for pid in cpu_after.keys() & cpu_before]
                measured["cpu_us_per_request"] = 1e6 * sum(used) / max(measured["requests"], 1)
                # How evenly the workers shared the work: the busiest one's share of the CPU.
                measured["busiest_worker_share"] = max(used, default=0.0) / max(sum(used), 1e-9)
                rounds.append((in_process, measured))
            baseline = sum(in_process for in_process, _ in rounds) / len(rounds)
            capacity = {
                "ok_rate": sum(m["ok_rate"] for _, m in rounds) / len(rounds),
                "p50_ms": max(m["p50_ms"] for _, m in rounds),
                "p99_ms": max(m["p99_ms"] for _, m in rounds),
                "errors": sum(m["statuses"].get("4xx-5xx", 0) for _, m in rounds),
                "rounds": [
                    {"in_process_per_s": round(in_process, 1), **measured}
                    for in_process, measured in rounds
                ],
            }
            if args.capacity_only:
                _report_capacity(args.bits, baseline, capacity, rounds, hsm=args.hsm)
                return 0
            rss_before = _rss_kib(server.pid)
            connections = 8 * cores
            # 80 %: wrk waits ``delay`` after each answer, so a connection's cycle is latency +
            # delay. With few connections the latency is most of the cycle, and it shrinks as
            # the load drops: the run drifts up to capacity. With 32 per worker the delay is
            # most of it; a 3 s trial then corrects the delay once.
            paced_connections = 32 * cores
            target = 0.8 * capacity["ok_rate"]
            delay = 1000 * paced_connections / target - capacity["p50_ms"]
            trial = wrk(
                url,
                connections=paced_connections,
                seconds=3,
                env=wrk_env,
                delay_ms=delay,
                count_statuses=False,
            )
            delay += 1000 * paced_connections * (1 / target - 1 / trial["ok_rate"])
            paced = wrk(
                url,
                connections=paced_connections,
                seconds=args.seconds,
                env=wrk_env,
                delay_ms=delay,
                count_statuses=False,
            )
            paced["share_of_capacity"] = round(paced["ok_rate"] / capacity["ok_rate"], 3)
            # Overload: paced to twice the capacity; a probe measures the 503s' own latency.
            heavy = 16 * connections
            overload_delay = 1000 * heavy / (2 * capacity["ok_rate"])
            probe = _Probe(url, context, api_key, wrk_env["PUSHPROV_BENCH_PAN"])
            probe.start()
            overload = wrk(
                url, connections=heavy, seconds=args.seconds, env=wrk_env, delay_ms=overload_delay
            )
            probe.stop()
            rss_middle = _rss_kib(server.pid)
            wrk(url, connections=heavy, seconds=args.seconds, env=wrk_env, delay_ms=overload_delay)
            rss_after = _rss_kib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        other_5xx = sum(
            n for s, n in overload["statuses"].items() if s.startswith("5") and s != "503"
        )
        summary = {
            "bits": args.bits,
            "cores": cores,
            "in_process_seal_per_s": round(baseline, 1),
            "capacity_per_s": round(capacity["ok_rate"], 1),
            "capacity_vs_in_process": round(capacity["ok_rate"] / baseline, 3),
            "capacity": capacity,
            "paced_80pct": paced,
            "overload": overload,
            "overload_other_5xx": other_5xx,
            "overload_probe": probe.summary(),
            "rss_kib_before_overload": rss_before,
            "rss_kib_after_first_overload": rss_middle,
            "rss_kib_after_second_overload": rss_after,
        }
        print(json.dumps(summary, indent=2))
        _report_capacity(args.bits, baseline, capacity, rounds, hsm=args.hsm)
        print(
            f"RESULT service-p99-at-80pct-ms {paced['p99_ms']:.1f} p50={paced['p50_ms']:.1f} "
            f"load={paced['share_of_capacity']:.2f}x-capacity"
        )
        fast = probe.summary()
        print(
            f"RESULT service-overload-2x 503s={overload['statuses'].get('503', 0)} "
            f"200s={overload['statuses'].get('200', 0)} other5xx={other_5xx} "
            f"503-p50-ms={fast['p50_503_ms']} 503-p99-ms={fast['p99_503_ms']} "
            f"200-p50-ms={fast['p50_200_ms']} "
            f"rss_kib={rss_before}->{rss_middle}->{rss_after}"
        )
        return 0
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
