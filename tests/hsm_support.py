"""A throwaway SoftHSM2 token for the test session, under its own SOFTHSM2_CONF.

SoftHSM2 reads its configuration once, when the module is first initialized in a process, so
the tokens live for the whole session: one directory, two tokens (the one the tests use, and
a second one that must not be picked by mistake). The PIN travels in a 0600 file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

LABEL = "pushprov-test"
OTHER_LABEL = "pushprov-other"
PIN = "4711-test-pin"
SO_PIN = "so-pin-0815"

# Where distributions put the module (Debian/Ubuntu, multiarch, Fedora, source builds, Homebrew).
_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


@dataclasses.dataclass(frozen=True)
class SoftHsm:
    module: str
    pin_file: Path
    wrong_pin_file: Path

    def uri(self, label: str = LABEL, **extra: str) -> str:
        query = f"module-path={self.module}&pin-source=file:{self.pin_file}"
        path = ";".join([f"token={label}", *(f"{k}={v}" for k, v in extra.items())])
        return f"pkcs11:{path}?{query}"


def softhsm_module() -> str | None:
    override = os.environ.get("SOFTHSM2_MODULE")
    for candidate in (override, *_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    module = softhsm_module()
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        if os.environ.get("CI"):
            pytest.fail("SoftHSM2 is required in CI: scripts/system-deps.sh installs it")
        pytest.skip("SoftHSM2 (softhsm2-util, libsofthsm2.so) not installed")
    home = tmp_path_factory.mktemp("softhsm")
    tokens = home / "tokens"
    tokens.mkdir(mode=0o700)
    conf = home / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        for label in (LABEL, OTHER_LABEL):
            subprocess.run(
                [
                    util,
                    "--init-token",
                    "--free",
                    "--label",
                    label,
                    "--pin",
                    PIN,
                    "--so-pin",
                    SO_PIN,
                ],
                check=True,
                capture_output=True,
            )
        pin_file = home / "pin"
        wrong = home / "wrong-pin"
        for path, text in ((pin_file, PIN), (wrong, "not-the-pin")):
            path.write_text(text + "\n")
            path.chmod(0o600)
        yield SoftHsm(module=module, pin_file=pin_file, wrong_pin_file=wrong)
    finally:
        if previous is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = previous
