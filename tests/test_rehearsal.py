"""The README's main job: the rehearsal, as a user runs it, must end with zero failures."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, cast

import pytest

from pushprov.cli import _rehearsal

from .hsm_support import softhsm_module


def test_rehearsal_rotates_both_keys_without_a_single_failed_gopc() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pushprov", "rehearse", "--step-seconds", "0.6"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = result.stdout
    assert result.returncode == 0, report + result.stderr[-2000:]
    traffic = re.search(r"(\d+) GOPCs .* accepted (\d+), rejected (\d+), failed (\d+)", report)
    assert traffic is not None, report
    total, accepted, rejected, failed = map(int, traffic.groups())
    assert total > 0 and accepted == total and rejected == failed == 0
    # Both rotations went through every state, in the order that never breaks traffic.
    for key in ("Issuer-A", "Issuer-B", "Sandbox-S1", "Sandbox-S2"):
        assert re.search(rf"{key}\s+self-test passed \(verified\) -> active", report), key
    for side, key in (
        ("issuer", "Issuer-A"),
        ("sandbox", "Issuer-A"),
        ("issuer", "Sandbox-S1"),
        ("sandbox", "Sandbox-S1"),
    ):
        assert re.search(rf"{side}\s+{key}\s+retiring -> retired", report), (side, key)
    order = [line.split()[1:3] for line in report.splitlines() if "->" in line]
    assert order.index(["sandbox", "Issuer-B"]) < order.index(
        ["issuer", "Issuer-B"]
    )  # trusted first
    assert order.index(["sandbox", "Sandbox-S2"]) < order.index(
        ["issuer", "Sandbox-S2"]
    )  # decrypts first
    # Each new key proved itself with the partner before the old one could retire.
    timeline = [
        list(event.groups())
        for event in re.finditer(r"(?m)^\s+\d+\.\d\s+(issuer|sandbox)\s+(\S+)\s+(.*)$", report)
    ]
    for new, old in (("Issuer-B", "Issuer-A"), ("Sandbox-S2", "Sandbox-S1")):
        refused = timeline.index(["issuer", old, _refused(new)])
        verified = next(
            i for i, event in enumerate(timeline)
            if event[:2] == ["issuer", new] and event[2].startswith("verified with the partner")
        )  # fmt: skip
        retired = timeline.index(["issuer", old, "active -> retiring"])
        assert refused < verified < retired, (new, old)
    figures = re.search(r"canary\s+(\d+) canary GOPCs, accepted (\d+), rejected (\d+); "
                        r"outside the canary, failed (\d+)", report)  # fmt: skip
    assert figures is not None, report
    canary, canary_accepted, canary_rejected, outside = map(int, figures.groups())
    assert canary > 0 and canary == canary_accepted and canary_rejected == outside == 0
    assert report.rstrip().endswith("rehearsal ok")


def _refused(new: str) -> str:
    return f"retire refused: {new} is not verified with the partner yet (partner_unverified)"


def test_the_canary_catches_a_key_the_sandbox_never_trusted() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pushprov", "rehearse", "--step-seconds", "0.6",
         "--fault", "sandbox-forgets-issuer-key"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = result.stdout
    assert result.returncode == 0, report + result.stderr[-2000:]
    canary = re.search(r"canary\s+(\d+) canary GOPCs .*accepted (\d+), rejected (\d+)", report)
    outside = re.search(r"outside\s+(\d+) GOPCs outside the canary, failed (\d+)", report)
    assert canary is not None and outside is not None, report
    sent, accepted, rejected = map(int, canary.groups())
    assert rejected > 0 and accepted == 0 and sent == rejected
    assert int(outside.group(1)) > 0 and int(outside.group(2)) == 0
    assert "Issuer-A active, partner verified" in report
    assert re.search(r"Issuer-B\s+canary stopped", report)
    assert "retire refused: Issuer-B" in report
    assert report.rstrip().endswith("rehearsal ok (the canary caught the fault)")


def test_rehearsal_moves_the_issuer_signing_role_into_a_softhsm2_token() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pushprov", "rehearse", "--hsm", "--step-seconds", "0.6"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if softhsm_module() is None or shutil.which("softhsm2-util") is None:
        # Said clearly, before anything starts.
        assert result.returncode == 2 and "--hsm needs SoftHSM2" in result.stderr
        pytest.skip("SoftHSM2 not installed")
    report = result.stdout
    assert result.returncode == 0, report + result.stderr[-2000:]
    assert "Issuer-B in a throwaway SoftHSM2 token" in report
    assert re.search(r"issuer\s+Issuer-B\s+generated in the SoftHSM2 token \(pending\)", report)
    assert re.search(r"issuer\s+Issuer-B\s+self-test passed \(verified\) -> active", report)
    assert re.search(r"issuer\s+Issuer-A\s+retiring -> retired", report)
    traffic = re.search(r"(\d+) GOPCs .* accepted (\d+), rejected (\d+), failed (\d+)", report)
    assert traffic is not None, report
    total, accepted, rejected, failed = map(int, traffic.groups())
    assert total > 0 and accepted == total and rejected == failed == 0
    assert report.rstrip().endswith("rehearsal ok")


def test_a_failed_rehearsal_shows_the_servers_error_lines(tmp_path: Path) -> None:
    # The data directory is deleted afterwards: the report is the only place left to say why.
    for side, name in (("issuer", "serve"), ("sandbox", "sandbox")):
        (tmp_path / side).mkdir()
        (tmp_path / side / f"{name}.log").write_text(
            '{"level":"warning","msg":"created a self-signed development certificate"}\n'
            + "".join(f'{{"level":"error","msg":"unhandled","n":{i}}}\n' for i in range(7))
        )
    shown = _rehearsal._server_errors(cast(Any, types.SimpleNamespace(root=tmp_path)))
    assert len(shown) == 10  # the last five of each server
    assert shown[0] == '  issuer log   {"level":"error","msg":"unhandled","n":2}'
    assert shown[-1].startswith("  sandbox log   ") and '"n":6' in shown[-1]
    assert not any("warning" in line for line in shown)
