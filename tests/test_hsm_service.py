"""`pushprov serve` with an HSM key: the token goes away while serving and comes back.

The service runs as operators run it (a subprocess, two workers, each with its own PKCS#11
session), on its own SoftHSM2 token directory; the test moves that directory away, as a token
pulled or an HSM partition gone would be, and back. What callers saw is printed (``-s``)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushprov import open_gopc, openpgp

from .hsm_support import PIN, SO_PIN, softhsm_module
from .service_support import request_body
from .test_service_store import PAN, PASSPHRASE, _free_port


def _token_home(tmp_path: Path) -> tuple[dict[str, str], Path]:
    module, util = softhsm_module(), shutil.which("softhsm2-util")
    if module is None or util is None:
        pytest.skip("SoftHSM2 (softhsm2-util, libsofthsm2.so) not installed")
    tokens = tmp_path / "tokens"
    tokens.mkdir(mode=0o700)
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    pin = tmp_path / "pin"
    pin.write_text(PIN + "\n")
    pin.chmod(0o600)
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "PUSHPROV_PKCS11_MODULE": module,
        "PUSHPROV_PKCS11_PIN_SOURCE": f"file:{pin}",
        "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE.decode(),
    }
    subprocess.run(
        [util, "--init-token", "--free", "--label", "svc", "--pin", PIN, "--so-pin", SO_PIN],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return env, tokens


@dataclasses.dataclass
class Served:
    client: httpx.Client
    key_id: str
    certificate: openpgp.Certificate
    google: openpgp.SecretKey
    seen: list[str]

    def post(self, n: int) -> httpx.Response:
        body = request_body(PAN, request_id=f"hsm-{n}-{time.monotonic_ns()}", session="s")
        return self.client.post("/v1/gopc", json=body)

    def note(self, phase: str, response: httpx.Response) -> Any:
        body = response.json()
        shown = body.get("problems") or (
            f"{body['errorResponseCode']}: {body['errorDescription']}"
            if "errorResponseCode" in body
            else body.get("status", "sealed")
        )
        self.seen.append(f"{phase}: {response.request.url.path} {response.status_code} {shown}")
        return body


_CLI = [sys.executable, "-m", "pushprov"]


@dataclasses.dataclass
class Prepared:
    data: Path
    key_id: str
    certificate: openpgp.Certificate
    google: openpgp.SecretKey
    api_key: str


def _prepare(tmp_path: Path, env: dict[str, str]) -> Prepared:
    """An HSM key made and promoted through the CLI, Google's key, an API client."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    common = ["--store", str(data / "keystore.db"), "--env", "sandbox", "--json"]

    def run(*args: str) -> str:
        result = subprocess.run(
            [*_CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    ours = json.loads(
        run("keys", "generate", *common, "--uid", "Issuer <i@x.example>", "--bits", "2048",
            "--hsm", "pkcs11:token=svc;object=gpay")
    )  # fmt: skip
    google = openpgp.generate_key("G <g@x.example>", bits=2048, at=dt.datetime.now(dt.UTC))
    (tmp_path / "google.pub").write_text(google.certificate.armor())
    theirs = json.loads(run("keys", "import", *common, str(tmp_path / "google.pub")))
    run("keys", "promote", *common, theirs["key_id"])
    run("keys", "promote", *common, ours["key_id"])
    (certificate,) = openpgp.read_certificates(
        run("keys", "export", *common[:-1], ours["key_id"]).encode()
    )
    api_key = run("clients", "add", "backend", "--data-dir", str(data)).strip()
    return Prepared(data, ours["key_id"], certificate, google, api_key)


def _serve_command(data: Path, port: int) -> list[str]:
    return [*_CLI, "serve", "--data-dir", str(data), "--port", str(port), "--workers", "2"]


@contextlib.contextmanager
def _serving(tmp_path: Path, env: dict[str, str]) -> Iterator[Served]:
    """`pushprov serve` on two workers with an HSM key; on the way out, its log is checked."""
    prepared = _prepare(tmp_path, env)
    data, api_key = prepared.data, prepared.api_key
    port = _free_port()
    server = subprocess.Popen(
        _serve_command(data, port), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not (data / "dev-tls.crt").exists():
            assert server.poll() is None and time.monotonic() < deadline, "no certificate"
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(data / "dev-tls.crt"))
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=context,
            headers={"authorization": f"Bearer {api_key}"},
            timeout=30,
        ) as client:
            while True:
                try:
                    client.get("/livez")
                    break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
            yield Served(client, prepared.key_id, prepared.certificate, prepared.google, seen)
            assert server.poll() is None  # the same process served throughout
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
        print("\n".join(["what callers saw:", *seen]))
    text = stderr.decode()
    assert PAN not in text and PIN not in text
    logs = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    statuses = {e["status"] for e in logs if e.get("msg") == "request" and "status" in e}
    assert 500 not in statuses and 503 in statuses


def _wait_ready(served: Served, within: float) -> None:
    start = time.monotonic()
    while served.client.get("/readyz").status_code != 200:
        assert time.monotonic() - start < within, "not ready"
        time.sleep(0.2)


def test_token_lost_while_serving_gives_503_then_recovers_without_restart(
    tmp_path: Path,
) -> None:
    env, tokens = _token_home(tmp_path)
    with _serving(tmp_path, env) as served:
        _wait_ready(served, 60)
        before = [served.post(i) for i in range(4)]
        assert [r.status_code for r in before] == [200] * 4
        served.note("serving", before[0])
        sealed = before[0].json()["googleOpaquePaymentCard"].encode()
        opened = open_gopc(
            sealed, session_id="s", decrypt_with=[served.google], verify_with=[served.certificate]
        )
        assert opened.envelope.signers == (served.key_id,)

        tokens.rename(tmp_path / "tokens-away")  # the token is gone
        during = [served.post(10 + i) for i in range(6)]
        for response in during[:2]:
            served.note("token gone", response)
        assert {r.status_code for r in during} == {503}
        assert {r.json()["errorResponseCode"] for r in during} == {"SERVICE_UNAVAILABLE"}
        assert "retry-after" in during[0].headers
        ready = served.client.get("/readyz")
        body = served.note("token gone", ready)
        assert ready.status_code == 503
        assert body["problems"] == [f"key {served.key_id}: token_unavailable"]

        (tmp_path / "tokens-away").rename(tokens)  # and back: no restart
        _wait_ready(served, 30)
        served.note("token back", served.client.get("/readyz"))
        after = [served.post(20 + i) for i in range(6)]
        served.note("token back", after[0])
        assert [r.status_code for r in after] == [200] * 6


def test_serve_with_a_wrong_pin_refuses_to_start_with_bad_passphrase(tmp_path: Path) -> None:
    """Like a wrong store passphrase: found before serving, exit 13, the PIN never shown."""
    env, _ = _token_home(tmp_path)
    prepared = _prepare(tmp_path, env)
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("not-the-pin\n")
    wrong.chmod(0o600)
    result = subprocess.run(
        _serve_command(prepared.data, _free_port()),
        env={**env, "PUSHPROV_PKCS11_PIN_SOURCE": f"file:{wrong}"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    print(f"what the operator saw: exit {result.returncode}: {result.stderr.strip()}")
    assert result.returncode == 13
    assert result.stderr.endswith("error: bad_passphrase: the token refused the PIN\n")
    assert "not-the-pin" not in result.stderr + result.stdout
