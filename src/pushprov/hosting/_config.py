"""Configuration of the service and the sandbox: defaults, then a TOML file, then ``PUSHPROV_*``
environment variables; and where it puts the keys and the service's state."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import shlex
import tomllib
from pathlib import Path
from typing import Any

from .._errors import UsageError
from ..store import Backend, default_store_path, open_backend

__all__ = ["ServiceConfig", "default_data_dir", "init_command", "keys_options"]


def default_data_dir() -> Path:
    """Where the `keys` commands look for the store by default, so serve and keys agree."""
    return default_store_path().parent


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8443
    workers: int = dataclasses.field(default_factory=lambda: os.cpu_count() or 1)
    data_dir: Path = dataclasses.field(default_factory=default_data_dir)
    # TLS: without a certificate a self-signed development one is made in data_dir.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # set: callers must present a certificate from this CA
    # Keys: the keystore (embedded SQLite by default) or, for tests and demos, key files.
    store: str | None = dataclasses.field(default=None, repr=False)  # a URL may hold a password
    store_passphrase_file: Path | None = None
    env: str = "sandbox"
    format: str = "pgp"
    # Protocol standards.
    timestamp_skew: _dt.timedelta = _dt.timedelta(seconds=60)
    idempotency_window: _dt.timedelta = _dt.timedelta(hours=24)
    rate_limit_per_second: int = 1000  # per client; a 2-core instance seals ~1000/s
    # Transport limits.
    max_body_bytes: int = 16 * 1024
    read_timeout: float = 10.0
    # Slow clients: the headers within this many seconds of accept (or of the previous
    # response), the whole request (body included) within the next; more connections than
    # max_connections per worker are closed at accept.
    header_timeout_seconds: float = 10.0
    request_timeout_seconds: float = 30.0
    max_connections: int = 1000
    queue_limit: int = 32  # requests waiting for or in a seal, per worker; more: 503
    key_refresh_seconds: float = 1.0
    # Canary rotations: a key on probation seals this fraction of GOPCs alone in its role, at
    # most canary_per_minute a minute per worker, and is verified with the partner after
    # canary_verify_after of them are accepted; outcomes for answers older than
    # outcome_window are counted as late and trusted for nothing.
    canary_fraction: float = 0.05
    canary_per_minute: int = 60
    canary_verify_after: int = 20
    outcome_window: _dt.timedelta = _dt.timedelta(hours=1)
    graceful_shutdown_seconds: float = 20.0
    log_level: str = "info"

    @classmethod
    def load(cls, path: Path | None = None, environ: dict[str, str] | None = None) -> ServiceConfig:
        values: dict[str, Any] = {}
        if path is not None:
            try:
                with open(path, "rb") as handle:
                    # tomllib.load lets a non-UTF-8 file escape as UnicodeDecodeError.
                    document = tomllib.loads(handle.read().decode("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
                raise UsageError(f"cannot read config {path}: {type(error).__name__}") from None
            section = document.get("service", document)
            if not isinstance(section, dict):
                raise UsageError(f"cannot read config {path}: [service] is not a table")
            values.update(section)
        environ = dict(os.environ) if environ is None else environ
        fields = {field.name: field for field in dataclasses.fields(cls)}
        for name in fields:
            key = f"PUSHPROV_{name.upper()}"
            if key in environ:
                values[name] = environ[key]
        unknown = set(values) - set(fields)
        if unknown:
            raise UsageError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(
            **{name: _coerce(name, value, fields[name].type) for name, value in values.items()}
        )

    def backend(self, default_store: str = "keystore.db") -> Backend:
        """The key store (``store``, else ``default_store`` in ``data_dir``) and the service's
        state (in a shared store's database, else ``service.sqlite`` in ``data_dir``)."""
        return open_backend(
            self.store or self.data_dir / default_store,
            state_file=self.data_dir / "service.sqlite",
        )

    def __post_init__(self) -> None:
        if self.env not in ("sandbox", "production"):
            raise UsageError("env must be sandbox or production")
        if self.format not in ("pgp", "jwe"):
            raise UsageError("format must be pgp or jwe")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise UsageError("tls_cert and tls_key go together")
        if min(self.workers, self.queue_limit) < 1 or self.max_body_bytes < 1024:
            raise UsageError("workers, queue_limit and max_body_bytes must be positive")
        # Written so that NaN fails too; an hour is far beyond any honest request.
        if not all(
            0 < t <= 3600 for t in (self.header_timeout_seconds, self.request_timeout_seconds)
        ):
            raise UsageError("header_timeout_seconds and request_timeout_seconds: 0 < s <= 3600")
        if self.max_connections < 1:
            raise UsageError("max_connections must be positive")
        if not 0 <= self.canary_fraction <= 1:
            raise UsageError("canary_fraction must be within 0 and 1")
        if min(self.canary_per_minute, self.canary_verify_after) < 1:
            raise UsageError("canary_per_minute and canary_verify_after must be positive")
        if self.outcome_window <= _dt.timedelta(0):
            raise UsageError("outcome_window must be positive")


def keys_options(config: ServiceConfig) -> str:
    """The options that point `pushprov keys` at the store ``config`` serves."""
    words = ["--env", config.env]
    backend = config.backend()
    if backend.path is None:
        words += ["--store", shlex.quote(backend.name)]
    elif config.store is not None or config.data_dir != default_data_dir():
        words += ["--store", shlex.quote(str(backend.path))]
    return " ".join(words)


def init_command(config: ServiceConfig) -> str:
    """The `pushprov init` line that sets up what ``config`` serves."""
    words = ["pushprov", "init"]
    if config.env != "sandbox":
        words += ["--env", config.env]
    if config.data_dir != default_data_dir():
        words += ["--data-dir", shlex.quote(str(config.data_dir))]
    return " ".join(words)


def _coerce(name: str, value: Any, kind: Any) -> Any:
    text = str(kind)
    try:
        if "Path" in text:
            return None if value in (None, "") else Path(str(value)).expanduser()
        if "timedelta" in text:
            return (
                value if isinstance(value, _dt.timedelta) else _dt.timedelta(seconds=float(value))
            )
        if text == "int":
            return int(value)
        if text == "float":
            return float(value)
        if "str" in text:
            return None if value in (None, "") and "None" in text else str(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        # OverflowError: inf or 1e300 as a number or duration; RuntimeError: "~nobody/..." as
        # a path, whose home directory cannot be found.
        raise UsageError(f"config value for {name} has the wrong type") from None
    return value
