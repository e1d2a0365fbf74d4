"""A logged-in session on one PKCS#11 token (python-pkcs11), and RSA keys made or found in it."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import os
import threading
from typing import Any, NoReturn

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from .._errors import KeyUnusableError, PassphraseError, UnsupportedError, UsageError
from ._errors import (
    TokenKeyNotFoundError,
    TokenUnavailableError,
    general_error_unavailable,
    token_errors,
)
from ._key import Role, TokenRsaKey
from ._uri import Pkcs11Uri, parse_uri, read_pin

__all__ = ["MIN_BITS", "Token", "open_token"]

MIN_BITS = 2048
DEFAULT_BITS = 3072
_MAX_BITS = 8192


class Token:
    """One logged-in read/write session on a token; close it, or use it as a context manager.
    Every call on it holds its module's lock (``module_lock``): one call into the module at a
    time in this process, on any session of any of its tokens."""

    def __init__(self, session: Any, uri: Pkcs11Uri, module: str, *, _token: object = None) -> None:
        if _token is not _BUILT_BY_OPEN:
            raise TypeError("use open_token()")
        self._session = session
        self._uri = uri
        self._lock = module_lock(module)
        with self._lock, token_errors():
            mechanisms = session.token.slot.get_mechanisms()
        self.mechanisms: frozenset[int] = frozenset(int(m) for m in mechanisms)

    @property
    def label(self) -> str:
        return str(self._session.token.label)

    def generate_rsa_key(
        self, label: str, role: Role, *, bits: int = DEFAULT_BITS, key_id: bytes | None = None
    ) -> TokenRsaKey:
        """A new RSA key pair made inside the token, private half sensitive, not extractable.

        The private key may do ``role`` only (CKA_SIGN or CKA_DECRYPT), so a signing key can
        never serve as a decryption oracle and the other way round.
        """
        if role not in ("sign", "decrypt"):
            raise UsageError('a token key\'s role is "sign" or "decrypt"')
        if not MIN_BITS <= bits <= _MAX_BITS:
            raise UsageError(f"token RSA keys have {MIN_BITS} to {_MAX_BITS} bits")
        if not label or len(label.encode()) > 128:
            raise UsageError("a token key needs a label of 1 to 128 bytes")
        self._require(Mechanism.RSA_PKCS_KEY_PAIR_GEN, "CKM_RSA_PKCS_KEY_PAIR_GEN")
        key_id = os.urandom(16) if key_id is None else key_id
        signs = role == "sign"
        capabilities = (
            MechanismFlag.SIGN | MechanismFlag.VERIFY
            if signs
            else MechanismFlag.DECRYPT | MechanismFlag.ENCRYPT
        )
        with self._lock, token_errors():
            _, private = self._session.generate_keypair(
                KeyType.RSA,
                bits,
                id=key_id,
                label=label,
                store=True,
                capabilities=capabilities,
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                    Attribute.SIGN: signs,
                    Attribute.DECRYPT: not signs,
                    Attribute.SIGN_RECOVER: False,
                    Attribute.UNWRAP: False,
                    Attribute.DERIVE: False,
                },
                public_template={Attribute.WRAP: False, Attribute.VERIFY_RECOVER: False},
            )
        return TokenRsaKey._open(self, private, role)

    def rsa_key(self, uri: str | Pkcs11Uri, role: Role) -> TokenRsaKey:
        """The private RSA key the URI's ``object``/``id`` names, checked fit for ``role``."""
        where = parse_uri(uri) if isinstance(uri, str) else uri
        if where.object is None and where.id is None:
            raise UsageError('the pkcs11: URI names no key ("object=" or "id=")')
        if where.type not in (None, "private"):
            raise UsageError('the pkcs11: URI must name a private key ("type=private")')
        if where.token is not None and where.token != self.label:
            raise UsageError("the pkcs11: URI names another token than this session's")
        wanted: dict[Attribute, Any] = {
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: KeyType.RSA,
        }
        if where.object is not None:
            wanted[Attribute.LABEL] = where.object
        if where.id is not None:
            wanted[Attribute.ID] = where.id
        with self._lock, token_errors(), general_error_unavailable():
            # Not get_key(): on a second match it raises with its search still open, and the
            # search holds the session's operation lock until the exception is freed, maybe
            # by another thread, which cannot release it: the session then hung for good.
            search = self._session.get_objects(wanted)
            try:
                found = list(itertools.islice(search, 2))
            finally:
                search.close()  # C_FindObjectsFinal, here, on this thread, under the lock
            if not found:
                raise TokenKeyNotFoundError("no RSA private key in the token matches")
            if len(found) > 1:
                raise TokenKeyNotFoundError("several keys in the token match; add id=")
            private = found[0]
            allowed = private[Attribute.SIGN if role == "sign" else Attribute.DECRYPT]
        if not allowed:
            raise KeyUnusableError(
                f"the token key may not {role} (its CKA_{role.upper()} attribute is false)"
            )
        return TokenRsaKey._open(self, private, role)

    def destroy(self, key: TokenRsaKey) -> None:
        """Destroy the key pair's objects in the token (private and public halves)."""
        if not key.key_id:
            raise UsageError("a token key without a CKA_ID cannot be destroyed by pushprov")
        modulus = key.public_key.public_numbers().n
        with self._lock, token_errors():
            found = self._session.get_objects(
                {Attribute.ID: key.key_id, Attribute.KEY_TYPE: KeyType.RSA}
            )
            # The ID picks the pair; the modulus makes sure no other key sharing it goes too.
            for obj in list(found):
                if int.from_bytes(obj[Attribute.MODULUS], "big") == modulus:
                    obj.destroy()

    def close(self) -> None:
        with self._lock, contextlib.suppress(p11.PKCS11Error):
            self._session.close()

    def __enter__(self) -> Token:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Token(label={self.label!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("token sessions cannot be pickled")

    def _require(self, mechanism: Mechanism, name: str) -> None:
        if int(mechanism) not in self.mechanisms:
            raise UnsupportedError(f"the token does not offer {name}")


_BUILT_BY_OPEN = object()
_MODULE_LOCKS: dict[str, threading.RLock] = {}


def module_lock(module: str) -> threading.RLock:
    """The lock every call into ``module`` holds, on any session of any of its tokens.

    python-pkcs11 initializes a module with ``C_Initialize(NULL)``: the application promises
    never to call it from two threads at once (PKCS#11 §5.4), and SoftHSM2 then turns its own
    mutexes off. A worker's event loop and its threadpool both reach the tokens (a key opened
    by the outcomes endpoint while a GOPC is signed): unserialized, SoftHSM2 answered
    CKR_GENERAL_ERROR or crashed the process, even with the two calls on different tokens.
    """
    # dict.setdefault is atomic: two threads asking at once get the same lock.
    return _MODULE_LOCKS.setdefault(os.path.realpath(module), threading.RLock())


def _after_fork() -> None:
    # A child opens its own sessions (PKCS#11 §6.7.7), with fresh locks: one another thread
    # held at the fork would stay held in the child.
    _MODULE_LOCKS.clear()


os.register_at_fork(after_in_child=_after_fork)

# The PIN each token accepted in this process, as a keyed MAC under a key that never leaves
# memory: enough to judge a later PIN when the login is shared, useless to anyone else.
_LOGINS: dict[tuple[str, bytes], bytes] = {}
_PIN_MAC_KEY = os.urandom(32)


def _pin_mac(pin: str) -> bytes:
    return hmac.new(_PIN_MAC_KEY, pin.encode(), hashlib.sha256).digest()


def open_token(
    uri: str | Pkcs11Uri, *, module_path: str | None = None, pin_source: str | None = None
) -> Token:
    """Log in to the token the URI names (``token=``, ``serial=`` or ``slot-id=``).

    The module is ``module_path``, else the URI's ``module-path``; the PIN is read from
    ``pin_source``, else the URI's ``pin-source`` (``file:/path`` or ``env:NAME``): a PIN is
    never an argument, so it never reaches argv or a configuration dump.
    """
    where = parse_uri(uri) if isinstance(uri, str) else uri
    module = module_path or where.module_path
    if not module:
        raise UsageError("no PKCS#11 module: give its path (module-path= in the URI)")
    source = pin_source or where.pin_source
    if source is None:
        raise PassphraseError("no token PIN source (pin-source=file:/path or env:NAME)")
    try:
        pin = read_pin(source).decode("utf-8")  # PKCS#11 PINs are UTF-8 text
    except UnicodeDecodeError:
        raise PassphraseError("the token PIN is not UTF-8 text") from None
    if where.token is None and where.serial is None and where.slot_id is None:
        raise UsageError('the pkcs11: URI names no token ("token=", "serial=" or "slot-id=")')
    with module_lock(module):
        return _log_in(where, module, pin)


def _log_in(where: Pkcs11Uri, module: str, pin: str) -> Token:
    try:
        lib = pkcs11.lib(module)
    except p11.PKCS11Error:
        raise TokenUnavailableError("the PKCS#11 module cannot be loaded or initialized") from None
    with token_errors(), general_error_unavailable():
        if where.slot_id is not None:
            slots = [s for s in lib.get_slots(token_present=True) if s.slot_id == where.slot_id]
            if not slots:
                raise TokenUnavailableError("no token is present in that slot")
            token = slots[0].get_token()
        else:
            serial = None if where.serial is None else where.serial.encode()
            token = lib.get_token(token_label=where.token, token_serial=serial)
        login = (module, bytes(token.serial))
        try:
            session = token.open(rw=True, user_pin=pin)
        except p11.UserAlreadyLoggedIn:
            # PKCS#11 logs in an application, not a session (§5.6): another Token in this
            # process holds the login and this session shares it, so the token cannot judge
            # this PIN; the one it accepted can.
            if not hmac.compare_digest(_LOGINS.get(login, _pin_mac(pin)), _pin_mac(pin)):
                raise PassphraseError("the token refused the PIN") from None
            session = token.open(rw=True)
        else:
            _LOGINS[login] = _pin_mac(pin)
    del pin
    return Token(session, where, module, _token=_BUILT_BY_OPEN)
