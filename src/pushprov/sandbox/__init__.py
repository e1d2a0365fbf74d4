"""Google's side of the GOPC hand-off, for tests and rehearsals (never for production)."""

from ._app import create_sandbox_app
from ._core import Reason, Sandbox, SessionBook, Verdict
from ._server import serve_sandbox

__all__ = ["Reason", "Sandbox", "SessionBook", "Verdict", "create_sandbox_app", "serve_sandbox"]
