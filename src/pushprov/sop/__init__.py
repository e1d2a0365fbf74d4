"""The Stateless OpenPGP face (``pushprov-sop``): SOP's command line over pushprov.openpgp."""

from ._cli import SOP_SPEC, main, run
from ._errors import SopError, SopFailure

__all__ = ["SOP_SPEC", "SopError", "SopFailure", "main", "run"]
