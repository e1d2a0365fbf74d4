"""Key records whose private halves live in a token: what a record holds, and how it is opened.

A record's ``custody`` text names the token key of each role (``TokenRsaKey.uri()``: token,
object label, id) and, as given when the key was made, the module and the PIN source; never a
PIN. ``TokenCustody`` opens tokens on demand, one logged-in session per token per process,
and hands out OpenPGP keys whose every private operation goes to the token. A lost token or
session costs the call that met it (``token_unavailable``, HTTP 503); the next call opens the
token afresh, so a service recovers without a restart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import NoReturn, TypeVar

import pkcs11
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import exceptions as p11

from .. import openpgp
from .._errors import KeyInvalidError, UsageError
from .._policy import GOOGLE_PROFILE, Policy
from ._errors import TokenKeyNotFoundError, TokenUnavailableError
from ._key import Role, TokenRsaKey
from ._openpgp import generate_openpgp_key
from ._token import DEFAULT_BITS, Token, module_lock, open_token
from ._uri import Pkcs11Uri, parse_uri

__all__ = ["Custody", "TokenCustody"]


_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class Custody:
    """Where an OpenPGP key's private halves live: one token key per role."""

    sign: str
    decrypt: str
    module_path: str | None = None
    pin_source: str | None = None

    def to_text(self) -> str:
        document = {"sign": self.sign, "decrypt": self.decrypt}
        if self.module_path is not None:
            document["module-path"] = self.module_path
        if self.pin_source is not None:
            document["pin-source"] = self.pin_source
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str) -> Custody:
        try:
            document = json.loads(text)
            custody = cls(
                sign=str(document["sign"]),
                decrypt=str(document["decrypt"]),
                module_path=document.get("module-path"),
                pin_source=document.get("pin-source"),
            )
        except (ValueError, KeyError, TypeError):
            raise KeyInvalidError("the record's token custody is unreadable") from None
        for uri in (custody.sign, custody.decrypt):
            parse_uri(uri)
        return custody

    def token(self) -> str:
        """The token label both keys live in."""
        label = parse_uri(self.sign).token
        if label is None or parse_uri(self.decrypt).token != label:
            raise KeyInvalidError("the record's token keys name no token, or two")
        return label


class TokenCustody:
    """Opens the tokens key records name, once per token, and the keys in them.

    ``module_path`` and ``pin_source`` (configuration) win over what a record or URI says;
    ``from_environment`` reads them from ``PUSHPROV_PKCS11_MODULE`` and
    ``PUSHPROV_PKCS11_PIN_SOURCE``. Thread-safe; every call into a module is serialized by its
    lock (a service worker runs its private operations one at a time anyway).
    """

    #: Configuration that overrides what a record says (another host's module path, another
    #: PIN file): the PKCS#11 module, and the PIN source (``file:/path`` or ``env:NAME``).
    MODULE_ENV = "PUSHPROV_PKCS11_MODULE"
    PIN_SOURCE_ENV = "PUSHPROV_PKCS11_PIN_SOURCE"

    def __init__(self, *, module_path: str | None = None, pin_source: str | None = None) -> None:
        self._module_path = module_path
        self._pin_source = pin_source
        self._tokens: dict[tuple[str, str], Token] = {}
        self._lock = threading.Lock()
        # Bumped whenever tokens are dropped: keys handed out find their objects again.
        self.generation = 0
        # Modules whose token or session was lost, and when the library was last restarted.
        self._lost: set[str] = set()
        self._restarted: dict[str, float] = {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> TokenCustody:
        """This process's custody for the configuration in ``environ``: one per configuration,
        kept for the process's life (PKCS#11 logs in a process, not a session), so keys taken
        from a key store stay usable after the store is closed."""
        config = (environ.get(cls.MODULE_ENV) or None, environ.get(cls.PIN_SOURCE_ENV) or None)
        with _SHARED_LOCK:
            custody = _SHARED.get(config)
            if custody is None:
                custody = _SHARED[config] = cls(module_path=config[0], pin_source=config[1])
            return custody

    # -- making, opening, destroying ---------------------------------------------------------

    def generate_openpgp_key(
        self,
        uri: str,
        user_id: str,
        *,
        at: _dt.datetime,
        bits: int | None = None,
        validity: _dt.timedelta | None = None,
        policy: Policy = GOOGLE_PROFILE,
    ) -> tuple[openpgp.SecretKey, Custody]:
        """A new [SC] primary and [E] subkey in the token ``uri`` names (``object=`` gives the
        label stem, else a random one); returns the key and the custody its record keeps."""
        where = parse_uri(uri)
        if where.id is not None:
            raise UsageError('a new token key gets its own CKA_ID: leave "id=" out of the URI')
        if where.token is None:
            raise UsageError('name the token by its label ("token=") to make keys in it')
        stem = where.object or f"pushprov-{os.urandom(6).hex()}"
        token = self._token(where.token, where.module_path, where.pin_source)
        secret, sign, decrypt = generate_openpgp_key(
            token, user_id, label=stem, bits=bits or DEFAULT_BITS, validity=validity,
            policy=policy, at=at,
        )  # fmt: skip
        custody = Custody(
            sign=sign.uri(),
            decrypt=decrypt.uri(),
            module_path=where.module_path,
            pin_source=where.pin_source,
        )
        return secret, custody

    def open_openpgp_key(
        self, certificate: openpgp.Certificate, custody: Custody
    ) -> openpgp.SecretKey:
        """``certificate`` with its private halves in the token. The token is opened and the
        keys found now (a missing token, object or attribute is told here, before any use)."""
        keys = [
            _HeldKey(self, custody, custody.sign, "sign"),
            _HeldKey(self, custody, custody.decrypt, "decrypt"),
        ]
        return openpgp.secret_key_from_ops(certificate, keys)

    def destroy(self, custody: Custody) -> None:
        """Destroy both key pairs' objects in the token; objects already gone are no error."""
        token = self._token(custody.token(), custody.module_path, custody.pin_source)
        for uri, role in _roles(custody):
            try:
                key = token.rsa_key(uri, role)
            except TokenKeyNotFoundError:
                continue
            token.destroy(key)

    def probe(self, custody: Custody) -> None:
        """Prove the token keys usable now: find both, sign a probe digest with one and
        decrypt a probe block with the other. Raises what a use would raise."""
        for uri, role in _roles(custody):
            held = _HeldKey(self, custody, uri, role)
            if role == "sign":
                held.sign_digest(_PROBE_HASH, _PROBE_DIGEST)
            else:
                block = os.urandom(16)
                sealed = held.public_key.encrypt(block, padding.PKCS1v15())
                if held.decrypt_block(sealed) != block:
                    raise TokenUnavailableError("the token's decryption probe came back wrong")

    def close(self) -> None:
        with self._lock:
            tokens, self._tokens = list(self._tokens.values()), {}
            self.generation += 1
        for token in tokens:
            token.close()

    # -- tokens ------------------------------------------------------------------------------

    def _token(self, label: str, module_path: str | None, pin_source: str | None) -> Token:
        module = self._module_path or module_path
        if not module:
            raise UsageError(
                f"no PKCS#11 module for token keys: set {self.MODULE_ENV} or module-path= "
                "in the URI"
            )
        where = Pkcs11Uri(token=label)
        pins = self._pin_source or pin_source
        with self._lock:
            token = self._tokens.get((module, label))
            if token is None:
                try:
                    token = open_token(where, module_path=module, pin_source=pins)
                except TokenUnavailableError:
                    if not self._restart(module):
                        raise
                    token = open_token(where, module_path=module, pin_source=pins)
                self._lost.discard(module)
                self._tokens[(module, label)] = token
            return token

    def _restart(self, module: str) -> bool:
        """After a loss, restart the library (C_Finalize, C_Initialize) at most once per
        ``_RESTART_INTERVAL``: a token that went away and came back is often only found again
        by a fresh C_Initialize (SoftHSM2, several network HSMs). Every session of the module
        in this process ends with it, so only a custody that saw a loss does it."""
        now = time.monotonic()
        if module not in self._lost or now - self._restarted.get(module, -1e9) < _RESTART_INTERVAL:
            return False
        self._restarted[module] = now
        for place in [place for place in self._tokens if place[0] == module]:
            del self._tokens[place]  # its session ended with the library; nothing to close
        self.generation += 1
        with module_lock(module), contextlib.suppress(p11.PKCS11Error):
            pkcs11.lib(module).reinitialize()
        return True

    def _forget(self, token: Token) -> None:
        """The token or its session is gone: drop it, so the next use opens it afresh."""
        with self._lock:
            for place, held in list(self._tokens.items()):
                if held is token:
                    del self._tokens[place]
                    self._lost.add(place[0])
            self.generation += 1
        token.close()

    def __repr__(self) -> str:
        return f"TokenCustody({len(self._tokens)} tokens open)"

    def __reduce__(self) -> NoReturn:
        raise TypeError("token sessions cannot be pickled")


_RESTART_INTERVAL = 1.0  # seconds
# What the probe signs: a fixed SHA-384 digest (OpenPGP hash 9), never anything a caller gave.
_PROBE_HASH = 9
_PROBE_DIGEST = bytes(48)


def _roles(custody: Custody) -> tuple[tuple[str, Role], ...]:
    return ((custody.sign, "sign"), (custody.decrypt, "decrypt"))


_SHARED: dict[tuple[str | None, str | None], TokenCustody] = {}
_SHARED_LOCK = threading.Lock()


def _after_fork() -> None:
    # A child process inherits no PKCS#11 state it may use (PKCS#11 §6.7.7): it opens its own.
    _SHARED.clear()


os.register_at_fork(after_in_child=_after_fork)


class _HeldKey:
    """A token key as ``openpgp.PrivateKeyOps``, found again after its token was lost."""

    __slots__ = ("_custody", "_generation", "_key", "_place", "_public", "_role", "_uri")

    def __init__(self, custody: TokenCustody, place: Custody, uri: str, role: Role) -> None:
        self._custody = custody
        self._place = place
        self._uri = uri
        self._role: Role = role
        self._key: TokenRsaKey | None = None
        self._generation = -1
        self._public = self._current().public_key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign_digest(self, hash_algo: int, digest: bytes) -> bytes:
        return self._run(lambda key: key.sign_digest(hash_algo, digest))

    def decrypt_block(self, block: bytes) -> bytes:
        return self._run(lambda key: key.decrypt_block(block))

    def _current(self) -> TokenRsaKey:
        key = self._key
        if key is None or self._generation != self._custody.generation:
            generation = self._custody.generation
            token = self._custody._token(
                self._place.token(), self._place.module_path, self._place.pin_source
            )
            key = token.rsa_key(self._uri, self._role)
            if getattr(self, "_public", None) is not None and (
                key.public_key.public_numbers() != self._public.public_numbers()
            ):
                raise KeyInvalidError("the token key the record names is another key now")
            self._key, self._generation = key, generation
        return key

    def _run(self, operation: Callable[[TokenRsaKey], _T]) -> _T:
        key = self._current()
        try:
            return operation(key)
        except TokenUnavailableError:
            self._key = None
            self._custody._forget(key._token)
            raise

    def __repr__(self) -> str:
        return f"_HeldKey(role={self._role!r}, [in token])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("token keys cannot be pickled")
