"""The project as a user installs it: the sdist and the wheel built as a release would build them,
the wheel installed into an empty venv with no extras, and the CLI run from there.

A plain `pip install .` once gave a CLI that crashed on every command (the rehearsal imported a
test-only package); the suite's own venv, which has every extra, could not see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _tracked_tree(target: Path) -> Path:
    """The files git tracks (as a fresh clone has them, with this checkout's edits)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to know which files a clone has")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def _plain_env() -> dict[str, str]:
    # Nothing from this checkout or the suite's venv may leak into the installed CLI.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix)
    )
    return env


def test_the_wheel_in_an_empty_venv_runs_help_demo_and_rehearse(tmp_path: Path) -> None:
    tree = _tracked_tree(tmp_path / "clone")
    dist = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(tree)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (sdist,) = dist.glob("pushprov-*.tar.gz")
    (wheel,) = dist.glob("pushprov-*.whl")
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("src/pushprov/py.typed") for n in tar.getnames())
    with zipfile.ZipFile(wheel) as zipped:
        names = zipped.namelist()
    assert "pushprov/py.typed" in names
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    env = _plain_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True, text=True, timeout=600, env=env, check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    # No extras: the test-only packages must be absent, or this test proves nothing.
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest"],
        capture_output=True, env=env, check=False,
    )  # fmt: skip
    assert probe.returncode != 0

    pushprov = str(venv / "bin" / "pushprov")
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [pushprov, *args], cwd=work, env=env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    helped = run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "exit status" in helped.stdout and "rehearse" in helped.stdout

    demo = run("demo")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.strip()

    rehearsal = run("rehearse", "--step-seconds", "0.3")
    assert rehearsal.returncode == 0, rehearsal.stdout + rehearsal.stderr[-3000:]
    assert "rehearsal ok" in rehearsal.stdout
    assert "failed 0" in rehearsal.stdout
