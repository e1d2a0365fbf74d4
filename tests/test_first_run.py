"""A first run as a stranger meets it: `pushprov init`, then `pushprov serve`, then the `curl`
line init printed, each a real process, over real TLS, in an empty HOME."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from .instances import child_env

SESSION = "first-run-session"  # the serverSessionId in init's curl line


def _stranger_env(home: Path) -> dict[str, str]:
    """A fresh user: an empty HOME, no XDG_DATA_HOME, no PUSHPROV_* setting or secret."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PUSHPROV_") and name != "XDG_DATA_HOME"
    }
    return child_env({**env, "HOME": str(home)})


def _pushprov(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushprov", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def _ok(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    result = _pushprov(env, *args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _init(env: dict[str, str], *args: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_ok(env, "init", "--json", "--bits", "2048", *args))
    return document


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _data_dir(home: Path) -> Path:
    return home / ".local" / "share" / "pushprov"


@contextmanager
def _serving(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "pushprov", "serve", "--port", str(port), "--workers", "1"],
            env=env, stdout=subprocess.DEVNULL, stderr=sink,
        )  # fmt: skip
    try:
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def _logs(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _wait_for(client: httpx.Client, server: subprocess.Popen[bytes], status: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if client.get("/readyz").status_code == status:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, "the server exited"
        assert time.monotonic() < deadline, f"/readyz never answered {status}"
        time.sleep(0.2)


def test_init_then_serve_then_the_printed_curl_seals_a_gopc(tmp_path: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    home = tmp_path / "home"
    home.mkdir()
    env = _stranger_env(home)
    init = _init(env)

    data = _data_dir(home)
    assert init["data_dir"] == str(data) and init["env"] == "sandbox"
    assert init["created"] == [
        "data_dir", "passphrase_file", "store", "issuer_key", "client", "tls_certificate"
    ]  # fmt: skip
    passphrase_file = Path(init["passphrase_file"])
    assert passphrase_file == data / "store-passphrase"
    assert stat.S_IMODE(passphrase_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert init["api_key"].startswith("pp_") and init["google_key"] is None
    assert init["next_steps"]["import_google_key"] == [
        "pushprov keys import GOOGLE_KEY.asc --env sandbox",
        "pushprov keys promote KEY_ID --env sandbox",
    ]
    # The issuer key is active (promoted after its self-test) in the store serve will read,
    # found by `keys` without a passphrase option: the file beside the store is enough.
    listed = json.loads(_ok(env, "keys", "list", "--env", "sandbox", "--json"))
    assert [(k["key_id"], k["owner"], k["state"]) for k in listed["keys"]] == [
        (init["issuer_key"], "ours", "active")
    ]

    port = _free_port()
    log = tmp_path / "serve.log"
    with _serving(env, port, log) as server:
        cert = Path(init["tls_certificate"])
        context = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=context) as client:
            # Google's key is missing: serve still serves, and says it is not ready.
            _wait_for(client, server, 503)
            # The balancer reads the status; the problems are for a known caller (init's key).
            assert client.get("/readyz").json() == {"status": "not ready"}
            detailed = client.get("/readyz", headers={"authorization": f"Bearer {init['api_key']}"})
            assert detailed.json()["problems"] == ["no active Google encryption key"]

            # Google's key, made and imported as init's next steps say.
            _ok(env, "key", "generate", "--uid", "Google <g@google.example>",
                "--bits", "2048", "--secret-out", "google.sec", "--public-out", "google.pub",
                cwd=tmp_path)  # fmt: skip
            google = json.loads(
                _ok(env, "keys", "import", "google.pub", "--env", "sandbox", "--json", cwd=tmp_path)
            )
            _ok(env, "keys", "promote", google["key_id"], "--env", "sandbox")
            _wait_for(client, server, 200)  # the running service picks the new key up

        line = init["next_steps"]["curl"].replace(":8443/", f":{port}/")
        assert f"--cacert {cert}" in line and init["api_key"] in line
        sealed = subprocess.run(
            ["bash", "-c", line + " --silent --show-error --fail-with-body"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert sealed.returncode == 0, sealed.stdout + sealed.stderr
    answer = json.loads(sealed.stdout)
    assert answer["responseHeader"]["requestId"].startswith("first-gopc-")
    (tmp_path / "gopc.b64").write_text(answer["googleOpaquePaymentCard"])

    # Google's side opens it: our issuer key signed it, for the session in the curl line.
    (tmp_path / "issuer.pub").write_text(
        _ok(env, "keys", "export", init["issuer_key"], "--env", "sandbox")
    )
    with open(tmp_path / "gopc.b64", "rb") as sealed_gopc:
        opened = subprocess.run(
            [sys.executable, "-m", "pushprov", "gopc", "open", "--session-id", SESSION,
             "--decrypt-with", "google.sec", "--verify-with", "issuer.pub", "--json"],
            stdin=sealed_gopc, cwd=tmp_path, env=env,
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    gopc = json.loads(opened.stdout)
    assert gopc["signatures"][0]["certificate"] == init["issuer_key"]
    assert gopc["gopc"]["validationContext"]["serverSessionId"] == SESSION

    logs = _logs(log)
    messages = [entry["msg"] for entry in logs]
    # Checked first, then "not ready" (why /readyz says 503), then "serving".
    assert messages.index("not ready") < messages.index("serving")
    assert any("pushprov keys import" in entry.get("problem", "") for entry in logs)
    assert messages[-1].startswith("Finished server process")  # a graceful stop on SIGTERM


def test_serve_with_nothing_set_up_fails_fast_with_one_line(tmp_path: Path) -> None:
    env = _stranger_env(tmp_path)
    port = str(_free_port())
    for command in (["serve", "--port", port], ["sandbox", "serve", "--port", port]):
        result = _pushprov(env, *command)
        assert result.returncode == 2
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("error: usage: no ") and "key store at " in line
        assert "serving" not in result.stderr
    assert "run 'pushprov init' first" in _pushprov(env, "serve").stderr
    assert not _data_dir(tmp_path).exists()  # a failed start leaves nothing behind


def test_serve_names_a_missing_or_wrong_passphrase(tmp_path: Path) -> None:
    env = _stranger_env(tmp_path)
    init = _init(env)
    moved = tmp_path / "elsewhere"
    Path(init["passphrase_file"]).rename(moved)
    result = _pushprov(env, "serve", "--port", str(_free_port()))
    assert result.returncode == 2 and "serving" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: usage: the key store needs its passphrase: ")
    assert init["passphrase_file"] in line

    wrong = _pushprov({**env, "PUSHPROV_STORE_PASSPHRASE": "not it"}, "serve")
    assert wrong.returncode == 13 and "serving" not in wrong.stderr
    (line,) = wrong.stderr.splitlines()
    assert line.startswith("error: bad_passphrase: ")

    # A passphrase file others can read is refused, not used.
    moved.rename(init["passphrase_file"])
    os.chmod(init["passphrase_file"], 0o644)
    exposed = _pushprov(env, "serve", "--port", str(_free_port()))
    assert exposed.returncode == 25 and exposed.stderr.startswith("error: store_insecure: ")


def test_init_twice_keeps_everything_and_adds_only_what_is_missing(tmp_path: Path) -> None:
    env = _stranger_env(tmp_path)
    first = _init(env)
    data = _data_dir(tmp_path)
    before = {path.name: path.read_bytes() for path in data.iterdir() if path.is_file()}

    again = _init(env)
    assert again["created"] == []
    assert again["kept"] == first["created"]
    assert again["issuer_key"] == first["issuer_key"]
    assert again["api_key"] is None  # shown once, when the client was made
    assert "$PUSHPROV_API_KEY" in again["next_steps"]["curl"]
    for name in ("store-passphrase", "dev-tls.crt", "dev-tls.key"):
        assert (data / name).read_bytes() == before[name]
    listed = json.loads(_ok(env, "keys", "list", "--env", "sandbox", "--json"))
    assert len(listed["keys"]) == 1

    # Another environment in the same store: only its issuer key is new.
    production = _init(env, "--env", "production")
    assert production["created"] == ["issuer_key"]
    assert production["issuer_key"] != first["issuer_key"]
    assert production["next_steps"]["serve"] == "pushprov serve --env production"

    # A store without its passphrase: init refuses to make a new one for it.
    Path(first["passphrase_file"]).unlink()
    refused = _pushprov(env, "init", "--bits", "2048")
    assert refused.returncode == 2 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert "exists but no passphrase is given" in line
    assert not Path(first["passphrase_file"]).exists()


def test_init_with_a_given_passphrase_makes_no_file_and_says_how_to_serve(
    tmp_path: Path,
) -> None:
    env = _stranger_env(tmp_path)
    secret = tmp_path / "passphrase"
    secret.write_text("a passphrase of my own\n")
    data = tmp_path / "data"
    init = _init(env, "--data-dir", str(data), "--store-passphrase-file", str(secret))
    assert init["passphrase_file"] is None
    assert not (data / "store-passphrase").exists()
    store = data / "keystore.db"
    assert init["next_steps"]["serve"] == (
        f"PUSHPROV_STORE_PASSPHRASE_FILE={secret} pushprov serve --data-dir {data}"
    )
    keys_line = init["next_steps"]["import_google_key"][0]
    assert keys_line == (
        f"pushprov keys import GOOGLE_KEY.asc --env sandbox --store {store} "
        f"--store-passphrase-file {secret}"
    )
    # The printed options open the store.
    words = keys_line.split()[4:]
    listed = json.loads(_ok(env, "keys", "list", *words, "--json"))
    assert listed["keys"][0]["key_id"] == init["issuer_key"]
