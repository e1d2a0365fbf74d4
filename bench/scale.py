"""Scale-out bench: 1 and 3 `pushprov serve` instances on one PostgreSQL, driven by wrk.

Starts a throwaway PostgreSQL cluster on 127.0.0.1 (tests/postgres_support.py), migrates it,
stores an active issuer key and an active stand-in Google key and one API client, then for each
instance count: starts the instances (each its own TLS port, ``--workers`` worker processes),
warms them up, and runs one wrk per instance at the same time (closed loop, ``--connections``
each), every run bounded by ``--seconds``. Reports the summed 200 rate, the worst p50/p99 over
the instances, and where the CPU went (instances, PostgreSQL, wrk), from /proc and rusage.

Every run ends by itself (wrk -d). Prints `RESULT` lines and a JSON summary.
Usage: python bench/scale.py [--seconds 8] [--bits 3072] [--instances 1,3] [--workers 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests/ helpers: the throwaway cluster and the instances

from tests.instances import Instance, running_instances  # noqa: E402
from tests.postgres_support import find_binaries, postgres_cluster  # noqa: E402

from load import HERE  # noqa: E402  (bench/ is on sys.path when this file runs as a script)
from pushprov import openpgp  # noqa: E402
from pushprov.cli._demo import random_test_pan  # noqa: E402
from pushprov.keys import Environment, Keystore  # noqa: E402
from pushprov.service import PostgresServiceState  # noqa: E402
from pushprov.store import PostgresStore, migrate  # noqa: E402

PASSPHRASE = "scale bench passphrase"
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _tree(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [pid, *(grand for kid in kids for grand in _tree(kid))]


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wrk_all(
    instances: list[Instance], *, connections: int, seconds: float, env: dict[str, str]
) -> list[dict[str, Any]]:
    """One wrk per instance, all at once; each reports its own BENCH line."""
    runs = []
    for instance in instances:
        tagged = {**env, "PUSHPROV_BENCH_TAG": f"i{instance.index}t{time.monotonic_ns()}"}
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                   "--timeout", "5s", "-s", str(HERE / "gopc.lua"), instance.url]  # fmt: skip
        runs.append(
            subprocess.Popen(
                command, env=tagged, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=seconds + 60)
        if run.returncode != 0:
            raise SystemExit(f"wrk failed: {err.strip()}")
        line = next(row for row in out.splitlines() if row.startswith("BENCH "))
        report: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
        report["ok_rate"] = report["statuses"].get("200", 0) / report["seconds"]
        reports.append(report)
    return reports


def measure(
    count: int, root: Path, *, store: str, env: dict[str, str], args: argparse.Namespace
) -> dict[str, Any]:
    wrk_env = {**env, "PUSHPROV_BENCH_PAN": random_test_pan().reveal()}
    with running_instances(count, root, store=store, env=env, workers=args.workers) as instances:
        _wrk_all(instances, connections=2, seconds=2, env=wrk_env)  # warm-up
        served = [pid for i in instances for pid in _tree(i.process.pid)]
        database = _postgres_pids()
        before = (_cpu_seconds(served), _cpu_seconds(database))
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        reports = _wrk_all(instances, connections=args.connections, seconds=args.seconds,
                           env=wrk_env)  # fmt: skip
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        service_cpu = _cpu_seconds(served) - before[0]
        database_cpu = _cpu_seconds(database) - before[1]
    wrk_cpu = (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)
    statuses: dict[str, int] = {}
    for report in reports:
        for status, n in report["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    return {
        "instances": count,
        "workers_per_instance": args.workers,
        "ok_per_s": round(sum(r["ok_rate"] for r in reports), 1),
        "p50_ms_worst": max(r["p50_ms"] for r in reports),
        "p99_ms_worst": max(r["p99_ms"] for r in reports),
        "statuses": statuses,
        "socket_errors": sum(r["errors"] for r in reports),
        "cpu_cores_busy": {
            "service": round(service_cpu / wall, 2),
            "postgres": round(database_cpu / wall, 2),
            "wrk": round(wrk_cpu / wall, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--bits", type=int, default=3072)
    parser.add_argument("--instances", default="1,3", help="comma-separated instance counts")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per instance")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections per instance")
    args = parser.parse_args(argv)
    binaries = find_binaries()
    if shutil.which("wrk") is None or binaries is None:
        raise SystemExit("needs wrk and PostgreSQL: apt-get install wrk postgresql")
    root = Path(tempfile.mkdtemp(prefix="pushprov-scale-"))
    try:
        with postgres_cluster(binaries) as cluster:
            url = cluster.create_database("bench")
            migrate(url)
            now = dt.datetime.now(dt.UTC)
            env_ = Environment.SANDBOX
            keystore = Keystore(
                PostgresStore.open(url, passphrase=PASSPHRASE.encode(), create=True),
                actor="bench",
            )
            ours = keystore.generate(env_, user_id="Bench <b@issuer.example>", bits=args.bits,
                                     at=now)  # fmt: skip
            keystore.promote(env_, ours.key_id, at=now)
            google = openpgp.generate_key("G <g@google.example>", bits=args.bits, at=now)
            theirs = keystore.import_key(env_, google.certificate.armor().encode(), at=now)
            keystore.promote(env_, theirs.key_id, at=now)
            keystore.close()
            state = PostgresServiceState(url)
            api_key = state.add_client("bench", at=now)
            state.close()
            env = {
                **os.environ,
                "PGPASSWORD": cluster.password,
                "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE,
                "PUSHPROV_RATE_LIMIT_PER_SECOND": "1000000",
                "PUSHPROV_LOG_LEVEL": "warning",
                "PUSHPROV_BENCH_KEY": api_key,
            }
            bare = cluster.url("bench", with_password=False)
            results = []
            for count in (int(n) for n in args.instances.split(",")):
                run_root = root / f"n{count}"
                run_root.mkdir()
                results.append(measure(count, run_root, store=bare, env=env, args=args))
        summary = {"bits": args.bits, "cores": os.cpu_count(), "runs": results}
        print(json.dumps(summary, indent=2))
        for result in results:
            busy = result["cpu_cores_busy"]
            print(
                f"RESULT scale-{result['instances']}x{result['workers_per_instance']} "
                f"{result['ok_per_s']:.1f}/s p50={result['p50_ms_worst']:.1f}ms "
                f"p99={result['p99_ms_worst']:.1f}ms cores: service={busy['service']} "
                f"postgres={busy['postgres']} wrk={busy['wrk']}"
            )
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
