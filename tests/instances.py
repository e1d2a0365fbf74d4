"""Several `pushprov serve` processes on loopback, each its own data directory and TLS port, one
store URL: what a deployment behind a load balancer runs. Used by tests/test_scale_out.py and
bench/scale.py."""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pushprov

__all__ = ["Instance", "child_env", "running_instances"]


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a `python -m pushprov` child that runs the pushprov imported here (a relative
    PYTHONPATH, or none, could pick another copy)."""
    here = str(Path(pushprov.__file__).resolve().parents[1])
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))}


@dataclasses.dataclass
class Instance:
    index: int
    url: str
    data: Path
    process: subprocess.Popen[bytes]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data / "dev-tls.crt"))

    def log(self) -> str:
        return (self.data / "serve.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(instance: Instance) -> bool:
    if not (instance.data / "dev-tls.crt").exists():  # the server makes it as it starts
        return False
    try:
        with urllib.request.urlopen(
            f"{instance.url}/readyz", context=instance.tls(), timeout=2
        ) as answer:
            return bool(answer.status == 200)
    except (OSError, ssl.SSLError, urllib.error.URLError):
        return False


@contextmanager
def running_instances(
    count: int, root: Path, *, store: str, env: Mapping[str, str], workers: int = 1
) -> Iterator[list[Instance]]:
    """``count`` instances of `pushprov serve --store STORE`; ``env`` carries the secrets
    (``PUSHPROV_STORE_PASSPHRASE``, ``PGPASSWORD``) and settings. Logs go to data/serve.log."""
    instances: list[Instance] = []
    try:
        for index in range(count):
            data = root / f"instance-{index}"
            data.mkdir(mode=0o700)
            port = _free_port()
            with open(data / "serve.log", "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "pushprov", "serve", "--store", store,
                     "--data-dir", str(data), "--port", str(port), "--workers", str(workers)],
                    env=child_env(env), stdout=subprocess.DEVNULL, stderr=log,
                )  # fmt: skip
            instances.append(Instance(index, f"https://127.0.0.1:{port}", data, process))
        deadline = time.monotonic() + 60
        for instance in instances:
            while not _ready(instance):
                if instance.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"instance {instance.index} did not start:\n{instance.log()}"
                    )
                time.sleep(0.1)
        yield instances
    finally:
        for instance in instances:
            if instance.process.poll() is None:
                instance.process.terminate()
        for instance in instances:
            try:
                instance.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                instance.process.kill()
                instance.process.wait(timeout=10)
