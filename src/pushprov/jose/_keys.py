"""RSA keys as JWK (RFC 7517/7518 §6.3) or PEM: loading, generating, and the private-key seam."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding
from joserfc.jwk import RSAKey

from .._clock import MAX_UNIX_SECONDS, as_unix, from_unix
from .._errors import (
    InputTooLargeError,
    KeyInvalidError,
    MalformedInputError,
    PolicyViolationError,
    UsageError,
)
from .._policy import GOOGLE_PROFILE, JWE_ALGS, JWS_ALGS, Policy
from ._compact import b64u_decode, b64u_encode, check_kid, parse_json_object

__all__ = [
    "TOO_SMALL",
    "JwkKey",
    "PrivateOps",
    "check_time",
    "generate_jwk",
    "load_jwk",
    "load_jwks",
    "usable_keys",
]

#: The reason ``JwkKey._unusable`` gives for a key below the policy's size: a policy violation.
TOO_SMALL = "it is smaller than the policy allows"
_MAX_BITS = 8192  # larger moduli only buy slower private operations for an attacker to trigger
# Larger exponents only slow every public operation down (OpenSSL refuses over 64 bits once the
# modulus is over 3072); real keys use 65537.
_MAX_EXPONENT = 2**32
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")
# RFC 7517 §4.3, and which JOSE role each operation belongs to.
_KEY_OPS = {
    "sign": "sig",
    "verify": "sig",
    "encrypt": "enc",
    "decrypt": "enc",
    "wrapKey": "enc",
    "unwrapKey": "enc",
    "deriveKey": "",
    "deriveBits": "",
}
_OP_NAMES = {
    "sign": ("sign",),
    "verify": ("verify",),
    "encrypt": ("encrypt", "wrapKey"),
    "decrypt": ("decrypt", "unwrapKey"),
}


class PrivateOps(Protocol):
    """The seam for private-key work: a software key, an HSM or a KMS adapter stands here.

    pyca/cryptography's ``RSAPrivateKey`` satisfies it as it is.
    """

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes: ...

    def sign(
        self, data: bytes, padding: AsymmetricPadding, algorithm: hashes.HashAlgorithm
    ) -> bytes: ...


class JwkKey:
    """An RSA key with its JWK metadata. Built only by ``generate_jwk``/``load_jwk``/``load_jwks``.

    The repr shows kid and thumbprint, nothing else. Private keys cannot be pickled or copied;
    their secret members leave only through ``to_json(private=True)``.
    """

    __slots__ = (
        "_alg",
        "_created",
        "_expires",
        "_key_ops",
        "_kid",
        "_ops",
        "_public",
        "_secret",
        "_thumbprint",
        "_use",
        "_verifier",
    )

    _alg: str | None
    _created: _dt.datetime | None
    _expires: _dt.datetime | None
    _key_ops: frozenset[str] | None
    _kid: str
    _ops: PrivateOps | None
    _public: rsa.RSAPublicKey
    _secret: rsa.RSAPrivateKey | None
    _thumbprint: str
    _use: str | None
    _verifier: RSAKey

    def __init__(self) -> None:
        raise TypeError("build keys with generate_jwk, load_jwk or load_jwks")

    @classmethod
    def _build(
        cls,
        public: rsa.RSAPublicKey,
        secret: rsa.RSAPrivateKey | None,
        *,
        kid: str | None,
        alg: str | None,
        use: str | None,
        key_ops: frozenset[str] | None,
        created: _dt.datetime | None,
        expires: _dt.datetime | None,
    ) -> JwkKey:
        key = object.__new__(cls)
        key._public = public
        key._secret = secret
        key._ops = secret
        key._thumbprint = _thumbprint(public)
        key._kid = kid if kid is not None else key._thumbprint
        key._alg = alg
        key._use = use
        key._key_ops = key_ops
        key._created = created
        key._expires = expires
        # joserfc verifies JWS signatures with its own key type; built once, it is public.
        key._verifier = RSAKey(public, public)
        return key

    @property
    def kid(self) -> str:
        """The key id: the JWK's ``kid``, else the thumbprint."""
        return self._kid

    @property
    def thumbprint(self) -> str:
        """RFC 7638 SHA-256 thumbprint, base64url."""
        return self._thumbprint

    @property
    def alg(self) -> str | None:
        """The one algorithm this key may be used with, or None for any the policy allows
        except RSA1_5, which only a key pinned to it serves."""
        return self._alg

    @property
    def use(self) -> str | None:
        """The JWK's ``use`` ("sig" or "enc"), or None for both."""
        return self._use

    @property
    def created(self) -> _dt.datetime | None:
        """The JWK's ``iat`` (our extension: when the key was made); before it, no use at all."""
        return self._created

    @property
    def expires(self) -> _dt.datetime | None:
        """The JWK's ``exp`` (our extension): from then on, no sealing or verifying."""
        return self._expires

    @property
    def bits(self) -> int:
        """The RSA modulus size."""
        return self._public.key_size

    @property
    def is_private(self) -> bool:
        """Whether private-key operations (sign, decrypt) are available."""
        return self._ops is not None

    def public(self) -> JwkKey:
        """The same key without its private part."""
        return JwkKey._build(
            self._public,
            None,
            kid=self._kid,
            alg=self._alg,
            use=self._use,
            key_ops=self._key_ops,
            created=self._created,
            expires=self._expires,
        )

    def to_json(self, *, private: bool = False) -> str:
        """The JWK as JSON; private members only on an explicit ``private=True``."""
        doc: dict[str, Any] = {"kty": "RSA", "kid": self._kid}
        if self._use is not None:
            doc["use"] = self._use
        if self._alg is not None:
            doc["alg"] = self._alg
        if self._key_ops is not None:
            doc["key_ops"] = sorted(self._key_ops)
        numbers = self._public.public_numbers()
        doc["n"] = _b64_int(numbers.n)
        doc["e"] = _b64_int(numbers.e)
        if private:
            if self._secret is None:
                raise UsageError("this key has no exportable private part")
            secret = self._secret.private_numbers()
            for name, value in zip(
                _PRIVATE_MEMBERS,
                (secret.d, secret.p, secret.q, secret.dmp1, secret.dmq1, secret.iqmp),
                strict=True,
            ):
                doc[name] = _b64_int(value)
        if self._created is not None:
            doc["iat"] = as_unix(self._created)
        if self._expires is not None:
            doc["exp"] = as_unix(self._expires)
        return json.dumps(doc, separators=(",", ":"))

    def expired_at(self, at: _dt.datetime) -> bool:
        """True when ``at`` is at or after the key's ``exp``."""
        return self._expires is not None and at >= self._expires

    def policy_problems(
        self, policy: Policy, at: _dt.datetime, *, use: str | None = None
    ) -> list[str]:
        """What keeps this key from the profile (empty: it complies). Like an OpenPGP key, it
        must record when it was made (``iat``) and when it expires (``exp``). ``use`` ("sig" or
        "enc") is the job it is wanted for; without it (a key file inspected on its own) the
        key's own ``use`` decides which algorithms are allowed."""
        problems: list[str] = []
        if self.bits < policy.min_rsa_bits:
            problems.append(f"it has {self.bits} bits (< {policy.min_rsa_bits})")
        if use is not None and self._use != use:
            problems.append(f'its use is not "{use}"')
        use = self._use if use is None else use
        if use == "sig":
            allowed = policy.jws_algs
        elif use == "enc":
            allowed = policy.jwe_algs
        else:  # no use recorded: any algorithm the policy allows for either
            allowed = policy.jws_algs | policy.jwe_algs
        if self._alg is not None and self._alg not in allowed:
            problems.append("it is pinned to an algorithm the policy does not allow for its use")
        if self._created is None or self._expires is None:
            problems.append("it records no creation time (iat) or no expiry (exp)")
        elif self._expires - self._created > policy.max_key_lifetime:
            problems.append(f"its lifetime exceeds {policy.max_key_lifetime.days} days")
        elif self.expired_at(at):
            problems.append("it is expired")
        return problems

    def _unusable(self, operation: str, alg: str, at: _dt.datetime, policy: Policy) -> str | None:
        """Why this key may not do ``operation`` ("sign", "verify", "encrypt", "decrypt") with
        ``alg`` at ``at`` under ``policy``, or None when it may.

        A key is unusable below the policy's RSA size (reason ``TOO_SMALL``), before its ``iat``
        for every operation, and from its ``exp`` for all but "decrypt". Decided from public
        metadata only, so a refusal never costs RSA work.
        """
        if self._public.key_size < policy.min_rsa_bits:
            return TOO_SMALL
        names = _OP_NAMES[operation]
        if self._use is not None and self._use != _KEY_OPS[names[0]]:
            return f'its "use" is "{self._use}"'
        if self._key_ops is not None and not self._key_ops.intersection(names):
            return 'its "key_ops" exclude it'
        if self._alg is not None and self._alg != alg:
            # Name only algorithms we know: the key file's text does not reach error messages.
            known = self._alg in JWE_ALGS | JWS_ALGS
            return f"it is pinned to {self._alg if known else 'another algorithm'}"
        if alg == "RSA1_5" and self._alg != alg:
            # An unpinned key also serves RSA-OAEP-256: a PKCS#1 v1.5 oracle on it (Bleichenbacher)
            # would open captured OAEP tokens as well. Legacy RSA1_5 gets a key of its own.
            return 'RSA1_5 is only for keys pinned to it (JWK "alg": "RSA1_5")'
        if operation in ("sign", "decrypt") and self._ops is None:
            return "it has no private part"
        # Like an OpenPGP key created in the future: not valid yet, whatever it is asked to do.
        if self._created is not None and at < self._created:
            return "it is not valid yet"
        # Decryption does not expire: messages sealed while the key was current are in flight.
        if operation != "decrypt" and self.expired_at(at):
            return "it has expired"
        return None

    def _with_ops(self, ops: PrivateOps) -> JwkKey:
        """This key with its private operations behind another seam (an HSM adapter, a probe)."""
        key = self.public()
        key._ops = ops
        return key

    def __repr__(self) -> str:
        return f"JwkKey(kid={self._kid!r}, thumbprint={self._thumbprint!r})"

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        if self._ops is not None:
            raise TypeError("a private key cannot be pickled")
        return _unpickle_public, (self.to_json(),)


def usable_keys(
    keys: Sequence[JwkKey],
    kid: str | None,
    operation: str,
    alg: str,
    at: _dt.datetime,
    policy: Policy,
) -> list[JwkKey]:
    """The keys that may do ``operation`` with ``alg``, only the one named ``kid`` if given."""
    return [
        key
        for key in keys
        if (kid is None or key._kid == kid) and key._unusable(operation, alg, at, policy) is None
    ]


def _unpickle_public(text: str) -> JwkKey:
    return _from_mapping(parse_json_object(text.encode("utf-8"), "JWK"), None)


def check_time(at: _dt.datetime) -> None:
    if not isinstance(at, _dt.datetime) or at.utcoffset() is None:
        raise UsageError("at must be an aware datetime (UTC)")
    # Outside this range we would write an iat/exp that no reader (ours included) accepts.
    # Whole seconds: as_unix goes through a float, which rounds x.999999 up near year 9999.
    if not 0 <= as_unix(at.replace(microsecond=0)) <= MAX_UNIX_SECONDS:
        raise UsageError("at must lie between 1970-01-01 and 9999-12-31T23:59:59Z")


def generate_jwk(
    *,
    bits: int | None = None,
    validity: _dt.timedelta | None = None,
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
    use: str | None = None,
    alg: str | None = None,
    kid: str | None = None,
) -> JwkKey:
    """A new private RSA JWK: ``iat`` = ``at``, ``exp`` = ``at + validity``, kid = thumbprint.

    ``bits`` defaults to ``policy.default_rsa_bits`` and ``validity`` to
    ``policy.default_key_validity``; ``use`` ("sig"/"enc") and ``alg`` pin the key's role.
    """
    check_time(at)
    bits = policy.default_rsa_bits if bits is None else bits
    validity = policy.default_key_validity if validity is None else validity
    if isinstance(bits, bool) or not isinstance(bits, int) or bits % 256 or bits > _MAX_BITS:
        raise UsageError(f"bits must be a multiple of 256 up to {_MAX_BITS}")
    if bits < policy.min_rsa_bits:
        raise PolicyViolationError(f"RSA keys need at least {policy.min_rsa_bits} bits")
    if validity <= _dt.timedelta(0):
        raise UsageError("validity must be positive")
    if validity > policy.max_key_lifetime:
        raise PolicyViolationError("validity exceeds the policy's maximum key lifetime")
    if use not in (None, "sig", "enc"):
        raise UsageError('use must be "sig" or "enc"')
    if alg is not None:
        allowed = {"sig": policy.jws_algs, "enc": policy.jwe_algs}.get(
            use or "", policy.jws_algs | policy.jwe_algs
        )
        if alg not in allowed:
            raise PolicyViolationError("alg is not one the policy allows for this use")
    if kid is not None:
        check_kid(kid, UsageError)
    created = at.astimezone(_dt.UTC).replace(microsecond=0)
    try:
        expires = created + validity
    except OverflowError:
        expires = None
    if expires is None or as_unix(expires) > MAX_UNIX_SECONDS:
        raise UsageError("the key would expire after 9999-12-31T23:59:59Z")
    secret = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return JwkKey._build(
        secret.public_key(),
        secret,
        kid=kid,
        alg=alg,
        use=use,
        key_ops=None,
        created=created,
        expires=expires,
    )


def load_jwk(data: bytes | str, *, policy: Policy = GOOGLE_PROFILE) -> JwkKey:
    """One RSA key from a JWK (JSON) or PEM (PKCS#8, PKCS#1 or SubjectPublicKeyInfo) file."""
    raw = _bytes_capped(data, policy)
    if raw.lstrip().startswith(b"-----BEGIN"):
        return _from_pem(raw.strip(), policy)
    obj = _json_object(raw)
    if "keys" in obj:
        raise KeyInvalidError("this is a JWK set: load it with load_jwks")
    return _from_mapping(obj, policy)


def load_jwks(data: bytes | str, *, policy: Policy = GOOGLE_PROFILE) -> list[JwkKey]:
    """The RSA keys of a JWK set (``{"keys": [...]}``); kids must be unique."""
    obj = _json_object(_bytes_capped(data, policy))
    members = obj.get("keys")
    if not isinstance(members, list) or not members:
        raise KeyInvalidError('a JWK set needs a non-empty "keys" array')
    keys = []
    for member in members:
        if not isinstance(member, dict):
            raise KeyInvalidError("a JWK set member is not an object")
        keys.append(_from_mapping(member, policy))
    if len({key.kid for key in keys}) != len(keys):
        raise KeyInvalidError("the JWK set has two keys with one kid")
    return keys


def _bytes_capped(data: bytes | str, policy: Policy) -> bytes:
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form: this text can be neither JSON nor PEM.
            raise KeyInvalidError("the key file is not valid Unicode text") from None
    elif not isinstance(data, bytes):
        raise UsageError("key data must be bytes or str")
    if len(data) > policy.max_key_file_bytes:
        raise InputTooLargeError("the key file is over the size cap")
    return data


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        return parse_json_object(raw, "key file")
    except MalformedInputError:
        raise KeyInvalidError("the key file is neither a JWK (strict JSON) nor PEM") from None


def _from_pem(raw: bytes, policy: Policy) -> JwkKey:
    if b"PRIVATE KEY-----" in raw:
        try:
            secret = serialization.load_pem_private_key(raw, password=None)
        except TypeError:
            raise KeyInvalidError("encrypted PEM keys are not supported") from None
        except UnsupportedAlgorithm:
            # A well-formed PKCS#8 whose algorithm OID OpenSSL does not know.
            raise KeyInvalidError("only RSA keys are supported") from None
        except ValueError:
            raise KeyInvalidError("the PEM private key cannot be read") from None
        if not isinstance(secret, rsa.RSAPrivateKey):
            raise KeyInvalidError("only RSA keys are supported")
        public = secret.public_key()
        key_secret: rsa.RSAPrivateKey | None = secret
    else:
        try:
            loaded = serialization.load_pem_public_key(raw)
        except UnsupportedAlgorithm:
            raise KeyInvalidError("only RSA keys are supported") from None
        except ValueError:
            raise KeyInvalidError("the PEM public key cannot be read") from None
        if not isinstance(loaded, rsa.RSAPublicKey):
            raise KeyInvalidError("only RSA keys are supported")
        public, key_secret = loaded, None
    _check_numbers(public.public_numbers())
    _check_bits(public, policy)
    return JwkKey._build(
        public,
        key_secret,
        kid=None,
        alg=None,
        use=None,
        key_ops=None,
        created=None,
        expires=None,
    )


def _from_mapping(obj: Mapping[str, Any], policy: Policy | None) -> JwkKey:
    """A JWK object; ``policy`` None skips the policy checks (re-reading our own export)."""
    if obj.get("kty") != "RSA":
        raise KeyInvalidError("only RSA keys (kty RSA) are supported")
    if "oth" in obj:
        raise KeyInvalidError("multi-prime RSA keys are not supported")
    public, secret = _rsa_keys(obj)
    kid = obj.get("kid")
    if kid is not None:
        check_kid(kid, KeyInvalidError)
    alg = obj.get("alg")
    if alg is not None and (not isinstance(alg, str) or not 0 < len(alg) <= 32):
        raise KeyInvalidError('"alg" must be a short string')
    use = obj.get("use")
    if use not in (None, "sig", "enc"):
        raise KeyInvalidError('"use" must be "sig" or "enc"')
    key_ops = _key_ops(obj.get("key_ops"))
    created, expires = _member_times(obj)
    if policy is not None:
        _check_bits(public, policy)
        _check_lifetime(created, expires, policy)
    return JwkKey._build(
        public,
        secret,
        kid=kid,
        alg=alg,
        use=use,
        key_ops=key_ops,
        created=created,
        expires=expires,
    )


def _rsa_keys(obj: Mapping[str, Any]) -> tuple[rsa.RSAPublicKey, rsa.RSAPrivateKey | None]:
    """The public key and, for a private JWK, the private key; the numbers are checked first."""
    public_numbers = rsa.RSAPublicNumbers(_member_int(obj, "e"), _member_int(obj, "n"))
    secret: rsa.RSAPrivateKey | None = None
    present = [name for name in _PRIVATE_MEMBERS if name in obj]
    if present and len(present) != len(_PRIVATE_MEMBERS):
        raise KeyInvalidError("a private JWK needs all of d, p, q, dp, dq, qi")
    _check_numbers(public_numbers)
    try:
        if present:
            d, p, q, dp, dq, qi = (_member_int(obj, name) for name in _PRIVATE_MEMBERS)
            secret = rsa.RSAPrivateNumbers(p, q, d, dp, dq, qi, public_numbers).private_key()
            public = secret.public_key()
        else:
            public = public_numbers.public_key()
    except ValueError:
        raise KeyInvalidError("the RSA key values are inconsistent") from None
    return public, secret


def _member_times(obj: Mapping[str, Any]) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """``iat`` and ``exp``, the second after the first when both are given."""
    created = _member_time(obj, "iat")
    expires = _member_time(obj, "exp")
    if created is not None and expires is not None and expires <= created:
        raise KeyInvalidError('"exp" must come after "iat"')
    return created, expires


def _check_lifetime(
    created: _dt.datetime | None, expires: _dt.datetime | None, policy: Policy
) -> None:
    if created is not None and expires is not None and expires - created > policy.max_key_lifetime:
        raise PolicyViolationError("the key's lifetime exceeds the policy's maximum")


def _member_int(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise KeyInvalidError(f'the JWK member "{name}" is missing or not a string')
    try:
        return int.from_bytes(b64u_decode(value.encode("ascii")), "big")
    except (UnicodeEncodeError, MalformedInputError):
        raise KeyInvalidError(f'the JWK member "{name}" is not base64url') from None


def _member_time(obj: Mapping[str, Any], name: str) -> _dt.datetime | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not int or not 0 <= value <= MAX_UNIX_SECONDS:
        raise KeyInvalidError(f'the JWK member "{name}" must be Unix seconds up to year 9999')
    return from_unix(value)


def _key_ops(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(op, str) for op in value):
        raise KeyInvalidError('"key_ops" must be an array of strings')
    ops = frozenset(value)
    if len(ops) != len(value) or not ops <= _KEY_OPS.keys():
        raise KeyInvalidError('"key_ops" must list distinct registered operations')
    return ops


def _check_numbers(numbers: rsa.RSAPublicNumbers) -> None:
    """What RSA can use at all, whatever the policy; both loaders (JWK and PEM) apply it.

    pyca accepts an even modulus and any exponent here, then fails with ValueError on the
    first encryption: the key would be imported, and break whoever seals to it.
    """
    if numbers.n.bit_length() > _MAX_BITS:
        raise KeyInvalidError(f"RSA keys over {_MAX_BITS} bits are not supported")
    if not numbers.n & 1:
        raise KeyInvalidError("the RSA modulus is even")
    if numbers.e > _MAX_EXPONENT:
        raise KeyInvalidError("the RSA public exponent is over 2^32")


def _check_bits(public: rsa.RSAPublicKey, policy: Policy) -> None:
    if public.key_size < policy.min_rsa_bits:
        raise PolicyViolationError(f"RSA keys need at least {policy.min_rsa_bits} bits")


def _b64_int(value: int) -> str:
    return b64u_encode(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")).decode("ascii")


def _thumbprint(public: rsa.RSAPublicKey) -> str:
    numbers = public.public_numbers()
    # RFC 7638 §3.2: required members only, sorted, no whitespace.
    canonical = f'{{"e":"{_b64_int(numbers.e)}","kty":"RSA","n":"{_b64_int(numbers.n)}"}}'
    return b64u_encode(hashlib.sha256(canonical.encode("ascii")).digest()).decode("ascii")
