"""The ``pushprov`` command line: parse input, call the verbs, render output."""

from ._main import main

__all__ = ["main"]
