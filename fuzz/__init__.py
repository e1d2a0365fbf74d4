"""Coverage-guided fuzzing of every parser a stranger can reach (atheris / libFuzzer).

One module per target, each with ``fuzz_one(data: bytes)``: it feeds ``data`` to a public
parser and returns normally when the parser accepts it or refuses it with a
``pushprov.PushprovError``. Anything else escaping it (another exception, a hang, a memory
blow-up) is a finding. ``python -m fuzz TARGET --seconds N`` runs one target; docs/fuzzing.md
describes the corpus, the runs and their figures.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["CORPUS", "DICTIONARIES", "TARGETS", "load"]

HERE = Path(__file__).resolve().parent
#: The seed corpus in the repository, one folder per target.
CORPUS = HERE / "corpus"

#: Target name -> what it reaches (docs/fuzzing.md lists the same).
TARGETS: dict[str, str] = {
    "armor": "openpgp.decode_message: ASCII armor, base64 in both alphabets, binary sniffing",
    "packets": "packet framing, MPIs, signature, key and PKESK packet bodies",
    "certificate": "read_certificates / read_secret_keys: transferable keys, self-signatures",
    "message": "open_message (pgp): the envelope, PKESKs, SEIPD, as sent over the wire",
    "message_inner": "open_message (pgp): what a correctly encrypted SEIPD holds (signed grammar, "
    "compression, literal data, signatures), as anyone holding our certificate can send",
    "signed": "verify_inline / verify_cleartext / verify_detached / armor_data: signed, "
    "unencrypted OpenPGP as the sop verbs read it",
    "sandbox": "Sandbox.accept: the sandbox's unauthenticated POST /v1/gopc verdicts",
    "jose_compact": "open_message (jwe): the compact JWE token",
    "jose_header": "open_message (jwe): the JWE protected header, placed in a valid token",
    "jws": "open_message (jwe): the nested JWS that a correctly encrypted JWE holds",
    "jwk": "load_jwk / load_jwks: JWK, JWK set and PEM key files",
    "gopc": "Gopc.from_json: the opened card document",
    "request": "POST /v1/gopc through the service's ASGI app: the request JSON",
    "auth": "the Authorization header (Bearer, Basic) on three routes of the service",
    "config": "ServiceConfig.load: the service's TOML configuration",
}

#: libFuzzer dictionaries (fuzz/dicts/): tokens the mutator splices in, for the text formats.
DICTIONARIES: dict[str, Path] = {
    target: HERE / "dicts" / name
    for name, targets in {
        "armor.dict": ("armor", "certificate", "signed"),
        "json.dict": ("gopc", "request", "jwk", "jose_header"),
        "toml.dict": ("config",),
        "auth.dict": ("auth",),
    }.items()
    for target in targets
}


def load(name: str) -> Callable[[bytes], None]:
    """The ``fuzz_one`` of target ``name``."""
    if name not in TARGETS:
        raise KeyError(name)
    module = importlib.import_module(f"fuzz.{name}")
    fuzz_one: Callable[[bytes], None] = module.fuzz_one
    return fuzz_one
