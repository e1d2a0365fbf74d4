"""A throwaway PostgreSQL cluster on loopback: initdb into a temp dir, a random port, stopped at
the end. Used by the ``postgres`` session fixture (tests/conftest.py), by bench/scale.py, and
by tests/test_faults.py on a cluster of its own, which it stops and starts. ``FreezableProxy``
stands between a client and a cluster and stops answering on demand.

PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` system user.
The superuser has a random password (SCRAM over TCP, 127.0.0.1 only; no Unix socket in /tmp).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import secrets
import select
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

__all__ = ["Cluster", "FreezableProxy", "find_binaries", "postgres_cluster"]

USER = "pushprov"


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: on PATH, else Debian's versioned directory."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


@dataclasses.dataclass(frozen=True)
class Cluster:
    port: int
    password: str = dataclasses.field(repr=False)
    # pg_ctl's argv up to its action (as the cluster's owner), and what `start` needs.
    pg_ctl: tuple[str, ...] = ()
    start_options: tuple[str, ...] = ()
    home: Path | None = None  # pg_ctl's working directory, one the cluster's owner may enter

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: sessions are ended, the server shuts down cleanly (what an
        operator's restart or a failover does to the connections)."""
        subprocess.run([*self.pg_ctl, "-m", "fast", "-w", "stop"], check=True,
                       capture_output=True, timeout=120, cwd=self.home)  # fmt: skip

    def start(self) -> None:
        subprocess.run([*self.pg_ctl, *self.start_options, "-w", "start"], check=True,
                       capture_output=True, timeout=120, cwd=self.home)  # fmt: skip

    def url(self, database: str = "postgres", *, with_password: bool = True) -> str:
        """With ``with_password=False``, for argv: the password then goes in ``PGPASSWORD``."""
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh database (dropped first if it exists); returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def postgres_cluster(binaries: Path) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="pushprov-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    password = secrets.token_urlsafe(24)
    pwfile = root / "pw"
    pwfile.write_text(password)
    if as_user:
        os.chown(pwfile, account.pw_uid, account.pw_gid)
    pwfile.chmod(0o600)

    def run(*argv: str) -> None:
        subprocess.run([*as_user, *argv], check=True, capture_output=True, timeout=120, cwd=root)

    try:
        run(
            str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        for attempt in range(3):
            port = _free_port()
            # fsync off: the tests kill service instances, never the database.
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=200"
            )
            try:
                run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l",
                    str(root / "log"), "start")  # fmt: skip
                break
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise
        yield Cluster(
            port,
            password,
            pg_ctl=(*as_user, str(binaries / "pg_ctl"), "-D", str(data)),
            start_options=("-o", options, "-l", str(root / "log")),
            home=root,
        )
    finally:
        if (data / "postmaster.pid").exists():
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


class FreezableProxy:
    """A TCP proxy on loopback in front of the cluster. ``freeze()`` stops forwarding both
    ways and keeps every socket open (new connections too are accepted by the kernel and then
    left unanswered): what a stuck server process or a stuck middlebox looks like to libpq,
    whose kernel keeps acknowledging, so TCP keepalives cannot tell. ``thaw()`` resumes."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._running = threading.Event()  # set: forwarding; clear: frozen
        self._running.set()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> FreezableProxy:
        self._accepter.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._running.set()
        self._listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def freeze(self) -> None:
        self._running.clear()

    def thaw(self) -> None:
        self._running.set()

    def _accept(self) -> None:
        while not self._closing.is_set():
            self._running.wait()
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self._upstream))
            except OSError:
                client.close()
                continue
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closing.is_set():
                self._running.wait()
                readable, _, _ = select.select([source], [], [], 0.05)
                if not readable or not self._running.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
