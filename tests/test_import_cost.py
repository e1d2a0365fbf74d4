"""What a use loads: the SQLite store never loads psycopg, the hosting configuration never
loads uvicorn, and each does load once the PostgreSQL backend or the server is asked for (so
that the checks can fail). Each check runs in a fresh interpreter: this one has loaded all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_HEAVY = ("psycopg", "uvicorn", "fastapi", "starlette", "httpx")


def _loaded_after(code: str) -> list[str]:
    """The heavy top-level packages in ``sys.modules`` after ``code`` ran."""
    report = "print(' '.join(sorted({m.partition('.')[0] for m in sys.modules} & HEAVY)))"
    script = f"import sys\nHEAVY = {set(_HEAVY)!r}\n{code}\n{report}\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.split()


def test_opening_a_sqlite_store_loads_no_psycopg(tmp_path: Path) -> None:
    code = (
        "import pushprov.store\n"
        f"store = pushprov.store.open_store({str(tmp_path / 'keys.db')!r}, "
        "passphrase=b'import cost', create=True, kdf_log2n=10)\n"
        "assert type(store).__name__ == 'SqliteStore'\n"
        "store.close()\n"
    )
    assert _loaded_after(code) == []


def test_the_service_state_on_sqlite_loads_no_psycopg(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    code = (
        "import pathlib\nimport pushprov.store\n"
        f"backend = pushprov.store.open_backend({str(tmp_path / 'keys.db')!r}, "
        f"state_file=pathlib.Path({str(tmp_path / 'service.sqlite')!r}))\n"
        "state = backend.open_state()\n"
        "assert type(state).__name__ == 'SqliteServiceState'\n"
        "state.close()\n"
    )
    assert _loaded_after(code) == []


def test_the_postgresql_service_state_loads_psycopg() -> None:
    assert _loaded_after("from pushprov.store import PostgresServiceState") == ["psycopg"]


def test_a_postgresql_location_loads_psycopg() -> None:
    # open_backend connects to nothing; naming the backend is enough to load its driver.
    code = (
        "import pushprov.store\n"
        "backend = pushprov.store.open_backend('postgresql://u@db.invalid/pushprov')\n"
        "assert backend.shared\n"
    )
    assert _loaded_after(code) == ["psycopg"]


def test_the_postgresql_names_still_import_from_the_package() -> None:
    assert _loaded_after("from pushprov.store import PostgresStore, redacted_url") == ["psycopg"]


def test_hosting_configuration_loads_no_uvicorn() -> None:
    code = (
        "from pushprov.hosting import PASSPHRASE_ENV, ServiceConfig, read_passphrase\n"
        "ServiceConfig.load(environ={})\n"
    )
    assert _loaded_after(code) == []


def test_the_server_names_load_uvicorn() -> None:
    assert _loaded_after("from pushprov.hosting import serve_workers") == ["uvicorn"]
