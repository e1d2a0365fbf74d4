"""Who the caller is: one rule for every route, decided before any other work on the request.

A client names itself with its API key: ``Authorization: Bearer <key>``, or Basic auth with the
key as the password (a browser, for the dashboard). The key is looked up in the service state;
a found client's name goes into the request's scope state, where the access log and the routes
find it. Reads the raw ASGI headers: no request object is built, as the hot path has none.

``admits`` is the gate the transport asks first, before the body cap, the routing or a byte of
the body: a request goes further only from a known caller or to a route public on purpose
(``PUBLIC``: the balancer's probes). Everything else is Google's silent 404, whatever the
method, path or body, so an unknown caller costs one header scan and at most one indexed
lookup, and learns nothing. One exception: the dashboard's sign-in prompt (a 401 a browser
needs before it sends Basic auth) is shown to a peer on loopback only, an operator through an
SSH tunnel; from anywhere else the dashboard is the same 404.
"""

from __future__ import annotations

import base64

from starlette.types import Scope

from ._answers import not_found
from ._state import ServiceState

__all__ = ["PUBLIC", "Callers", "from_loopback"]

# (method, path) that answer without a caller: liveness and readiness for the load balancer.
PUBLIC = frozenset({("GET", "/livez"), ("GET", "/readyz")})
_DASHBOARD = ("GET", "/dashboard")


class Callers:
    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def admits(self, scope: Scope) -> bool:
        """Whether the request may go past the transport; identifies the caller on the way."""
        if self.identify(scope) is not None:
            return True
        route = (scope["method"], scope["path"])
        return route in PUBLIC or (route == _DASHBOARD and from_loopback(scope))

    def identify(self, scope: Scope) -> str | None:
        """The client behind the request's first Authorization header, or None."""
        known: str | None = scope["state"].get("client")
        if known is not None:  # the transport's gate found it already
            return known
        for name, value in scope["headers"]:
            if name == b"authorization":
                client = self._client_of(value.decode("latin-1"))
                if client is not None:
                    scope["state"]["client"] = client
                return client
        return None

    def require(self, scope: Scope) -> str:
        """The client, or the silent 404 Google's rule gives an unknown caller."""
        client = self.identify(scope)
        if client is None:
            raise not_found()
        return client

    def _client_of(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                token = base64.b64decode(token, validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        elif scheme != "bearer":
            return None
        return self._state.authenticate(token)


def from_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    host = (client[0] if client else "").removeprefix("::ffff:")
    return host == "::1" or host.startswith("127.")
