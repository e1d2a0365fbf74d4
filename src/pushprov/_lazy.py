"""Names a package exports but loads on first use (PEP 562), for the few submodules whose
imports are heavy (psycopg, uvicorn) and that most users of the package never reach: the CLI's
``--help`` and a SQLite store should not pay for them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each lazily exported name to
    the submodule that defines it, relative to the package (``"._postgres"``)."""

    def load(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, package), name)
        setattr(sys.modules[package], name, value)  # found once, then a plain attribute
        return value

    return load
