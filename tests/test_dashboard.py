"""The dashboard: served over TLS behind the API key, listing every key of the store with its
state, drawn on a timeline; checked with an HTTP client and in a real headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pushprov import openpgp
from pushprov.keys import Environment, Keystore, SecretCache, StoreKeySource
from pushprov.store import SqliteStore

from .service_support import Server, running_server

PASSPHRASE = b"dashboard test passphrase"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    """A store whose keys are in every live state: active, pending, retiring, retired."""
    tmp = tmp_path_factory.mktemp("dash")
    path = tmp / "keys" / "keystore.db"
    path.parent.mkdir(mode=0o700)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        store = SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
        return Keystore(store, actor="test", secret_cache=cache, drain_window=dt.timedelta(0))

    env = Environment.SANDBOX
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    keystore = open_keystore()
    a = keystore.generate(env, user_id="A <a@i.example>", bits=2048, at=now)
    keystore.promote(env, a.key_id, at=now)
    google = openpgp.generate_key("G <g@g.example>", bits=2048, at=now)
    g = keystore.import_key(env, google.certificate.armor().encode(), at=now)
    keystore.promote(env, g.key_id, at=now)
    b = keystore.generate(
        env, user_id="B <b@i.example>", bits=2048, at=now + dt.timedelta(minutes=1)
    )
    keystore.promote(env, b.key_id, at=now + dt.timedelta(minutes=2), replacing=[a.key_id])
    c = keystore.generate(
        env, user_id="C <c@i.example>", bits=2048, at=now + dt.timedelta(minutes=3)
    )
    keystore.promote(env, c.key_id, at=now + dt.timedelta(minutes=4), replacing=[b.key_id])
    keystore.retire(env, a.key_id, at=now + dt.timedelta(minutes=5), final=True)
    d = keystore.generate(
        env, user_id="D <d@i.example>", bits=2048, at=now + dt.timedelta(minutes=6)
    )
    states = {
        a.key_id: "retired",
        b.key_id: "retiring",
        c.key_id: "active",
        g.key_id: "active",
        d.key_id: "pending",
    }
    source = StoreKeySource(open_keystore, env, refresh=0)
    with running_server(tmp, source) as server:
        yield server, states


def test_dashboard_lists_every_key_with_its_state(dashboard: tuple[Server, dict[str, str]]) -> None:
    server, states = dashboard
    with httpx.Client(base_url=server.url, verify=server.tls()) as anonymous:
        refused = anonymous.get("/dashboard")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith(
            "Basic"
        )
        basic = base64.b64encode(f"ops:{server.api_key}".encode()).decode()
        page = anonymous.get("/dashboard", headers={"authorization": f"Basic {basic}"})
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    text = page.text
    for key_id, state in states.items():
        assert f'<td class="id">{key_id}</td>' in text
        row = text[text.index(key_id) :].split("</tr>")[0]
        assert f'class="state {state}"' in row, (key_id, state)
    assert text.count("<rect ") >= len(states)  # a timeline bar for every key
    assert "no usable active key" not in text  # every role has an active key


@pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"), reason="no chromium"
)
def test_dashboard_in_headless_chromium(
    dashboard: tuple[Server, dict[str, str]], tmp_path: Path
) -> None:
    server, states = dashboard
    url = server.url.replace("https://", f"https://ops:{server.api_key}@") + "/dashboard"
    common = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--ignore-certificate-errors",  # the development certificate is self-signed
    ]  # fmt: skip
    dom = subprocess.run(
        [*common, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for key_id, state in states.items():
        assert key_id in dom.stdout
        row = dom.stdout[dom.stdout.index(key_id) :].split("</tr>")[0]
        assert f'class="state {state}"' in row
    assert "<svg" in dom.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    result = subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1100,1000", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
