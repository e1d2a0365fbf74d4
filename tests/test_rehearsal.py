"""The README's main job: the rehearsal, as a user runs it, must end with zero failures."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

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
    assert report.rstrip().endswith("rehearsal ok")


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
