"""Slow clients are dropped (issue 14, finding 2): a header deadline, a whole-request deadline
and a per-worker connection cap, seen from real TLS sockets on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from pushprov import openpgp
from pushprov.keys import FileKeySource

from .service_support import Server, running_server

NOW = dt.datetime.now(dt.UTC)
CAP = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    issuer = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    google = openpgp.generate_key("g <g@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[issuer], recipients=[google.certificate])
    with running_server(
        tmp_path_factory.mktemp("limits"),
        source,
        header_timeout_seconds=1.0,
        request_timeout_seconds=2.0,
        max_connections=CAP,
    ) as srv:
        yield srv


def _connect(server: Server) -> ssl.SSLSocket:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    raw = socket.create_connection((url.hostname, url.port), timeout=5)
    return server.tls().wrap_socket(raw, server_hostname=url.hostname)


def _closed_within(sock: ssl.SSLSocket, seconds: float) -> bool:
    """True when the server closes (EOF or reset) within ``seconds``; what it sends before
    (a response already due) is read and dropped."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(4096) == b"":
                return True
        except (ConnectionResetError, ssl.SSLEOFError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def test_a_client_sending_one_header_byte_a_second_is_dropped(server: Server) -> None:
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 20
    with _connect(server) as sock:
        started = time.monotonic()
        sock.settimeout(0.05)
        dropped = False
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                dropped = sock.recv(1024) == b""
            except (TimeoutError, ssl.SSLWantReadError):
                pass
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                dropped = True
            if dropped:
                break
            time.sleep(0.25)  # four bytes a second: each keeps uvicorn's keep-alive quiet
        held = time.monotonic() - started
    assert dropped and held < 2.0, held  # the 1 s header deadline, not the 5 s of headers


def test_a_request_whose_body_does_not_come_is_dropped_by_the_request_deadline(
    server: Server,
) -> None:
    # Authenticated, so the service waits for the body (its own read timeout is 10 s).
    head = (
        "POST /v1/gopc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {server.api_key}\r\nContent-Length: 100\r\n\r\n{{"
    )
    with _connect(server) as sock:
        sock.sendall(head.encode())
        started = time.monotonic()
        sock.settimeout(1.5)
        with pytest.raises(TimeoutError):  # nothing is answered before the deadline
            sock.recv(1024)
        assert _closed_within(sock, 2.5)
        assert time.monotonic() - started < 2.5


def test_a_served_connection_gets_a_new_header_deadline(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(2.0)
        assert sock.recv(1024).startswith(b"HTTP/1.1 ")
        sock.sendall(b"GET /hea")  # half a second request, then nothing
        started = time.monotonic()
        assert _closed_within(sock, 4.0)
        assert time.monotonic() - started < 2.0


def test_half_sent_connections_beyond_the_cap_are_closed(server: Server) -> None:
    with contextlib.ExitStack() as stack:
        held = []
        for _ in range(3 * CAP):
            sock = stack.enter_context(_connect(server))
            sock.sendall(b"GET / HTTP/1.1\r\nHo")
            held.append(sock)
        # Those beyond the cap are closed at once, the rest by the header deadline.
        refused = sum(_closed_within(sock, 0.2) for sock in held)
        assert refused >= 2 * CAP
        time.sleep(1.2)
        assert all(_closed_within(sock, 0.5) for sock in held)
    # And the worker serves again.
    with server.client() as client:
        assert client.get("/livez").status_code == 200
