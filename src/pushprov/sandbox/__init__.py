"""Google's side of the GOPC hand-off, for tests and rehearsals (never for production)."""

from ._app import create_sandbox_app
from ._core import Reason, Sandbox, SessionBook, Verdict

__all__ = ["Reason", "Sandbox", "SessionBook", "Verdict", "create_sandbox_app"]
