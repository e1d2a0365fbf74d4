"""An RSA private key inside a token, behind both RSA seams (OpenPGP and JOSE)."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pkcs11 import MGF, Attribute, Mechanism
from pkcs11 import exceptions as p11

from .._errors import KeyUnusableError, UnsupportedError
from ._errors import TOKEN_FAILURES, general_error_unavailable, token_errors
from ._uri import Pkcs11Uri

if TYPE_CHECKING:
    from ._token import Token

__all__ = ["Role", "TokenRsaKey"]

Role = Literal["sign", "decrypt"]

# RFC 8017 §9.2 note 1: the DER DigestInfo prefix for each hash, keyed by its name; OpenPGP's
# hash IDs (RFC 9580 §9.5) name the same hashes. CKM_RSA_PKCS signs what it is given, so the
# prefix is ours to add.
_DIGEST_INFO = {
    "sha224": bytes.fromhex("302d300d06096086480165030402040500041c"),
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_OPENPGP_HASHES = {8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
# Mechanisms that hash in the token, for JWS (which hands the whole signing input).
_PKCS1_WITH_HASH = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_PSS_WITH_HASH = {
    "sha256": Mechanism.SHA256_RSA_PKCS_PSS,
    "sha384": Mechanism.SHA384_RSA_PKCS_PSS,
    "sha512": Mechanism.SHA512_RSA_PKCS_PSS,
}
_PSS_PARAMS = {
    "sha256": (Mechanism.SHA256, MGF.SHA256, 32),
    "sha384": (Mechanism.SHA384, MGF.SHA384, 48),
    "sha512": (Mechanism.SHA512, MGF.SHA512, 64),
}
OAEP_256 = "CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256"


class TokenRsaKey:
    """A private RSA key that never leaves its token; every operation is a PKCS#11 call.

    Satisfies ``openpgp.PrivateKeyOps`` (``sign_digest``, ``decrypt_block``) and the JOSE
    private-key seam (``sign``, ``decrypt``). Has no exportable secret; not picklable.
    """

    __slots__ = ("_private", "_public", "_token", "key_id", "label", "role")

    _private: Any  # the pkcs11 private-key object (a handle; the key stays in the token)
    _public: rsa.RSAPublicKey
    _token: Token
    key_id: bytes
    label: str
    role: Role

    def __init__(self) -> None:
        raise TypeError("use Token.generate_rsa_key() or Token.rsa_key()")

    @classmethod
    def _open(cls, token: Token, private: Any, role: Role) -> TokenRsaKey:
        key = object.__new__(cls)
        key._token = token
        key._private = private
        key.role = role
        # The module's lock: one session serves every thread of a worker, and two threads
        # reading attributes at once made SoftHSM2 fail or crash.
        with token._lock, token_errors(), general_error_unavailable():
            key.key_id = bytes(private[Attribute.ID])
            key.label = str(private[Attribute.LABEL])
            modulus = int.from_bytes(private[Attribute.MODULUS], "big")
            exponent = int.from_bytes(private[Attribute.PUBLIC_EXPONENT], "big")
        key._public = rsa.RSAPublicNumbers(exponent, modulus).public_key()
        return key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def uri(self) -> str:
        """The RFC 7512 URI naming this key (token label, object label, id; no module, no PIN)."""
        return str(
            Pkcs11Uri(token=self._token.label, object=self.label, id=self.key_id, type="private")
        )

    def attributes(self) -> dict[str, bool]:
        """The private object's protection and usage flags, as the token reports them."""
        names = {
            "sensitive": Attribute.SENSITIVE,
            "extractable": Attribute.EXTRACTABLE,
            "always_sensitive": Attribute.ALWAYS_SENSITIVE,
            "never_extractable": Attribute.NEVER_EXTRACTABLE,
            "sign": Attribute.SIGN,
            "decrypt": Attribute.DECRYPT,
        }
        with self._token._lock, token_errors():
            return {name: bool(self._private[attr]) for name, attr in names.items()}

    # --- openpgp.PrivateKeyOps --------------------------------------------------------------
    def sign_digest(self, hash_algo: int, digest: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 over a digest: CKM_RSA_PKCS over its DER DigestInfo.

        The seam hands a finished digest, and CKM_SHA384_RSA_PKCS would hash it again: only
        the raw mechanism fits (as AWS KMS's ``MessageType=DIGEST`` does).
        """
        name = _OPENPGP_HASHES.get(hash_algo)
        if name is None or len(digest) != hashlib.new(name).digest_size:
            raise UnsupportedError("the token signs SHA-224/256/384/512 digests only")
        return self._sign_raw(_DIGEST_INFO[name] + digest)

    def decrypt_block(self, block: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 through CKM_RSA_PKCS. Whatever the token says about the block (bad
        padding, wrong length) is one ValueError, as pyca raises: callers treat it as today."""
        return self._decrypt(block, Mechanism.RSA_PKCS, None)

    # --- the JOSE private-key seam ----------------------------------------------------------
    def sign(
        self, data: bytes, padding: padding.AsymmetricPadding, algorithm: hashes.HashAlgorithm
    ) -> bytes:
        name = algorithm.name
        if name not in _PKCS1_WITH_HASH:
            raise UnsupportedError("the token signs with SHA-256/384/512 only")
        if isinstance(padding, _PSS):
            params = _PSS_PARAMS[name]
            if int(_PSS_WITH_HASH[name]) in self._token.mechanisms:
                return self._call_sign(data, _PSS_WITH_HASH[name], params)
            self._require(Mechanism.RSA_PKCS_PSS, f"CKM_{name.upper()}_RSA_PKCS_PSS")
            return self._call_sign(hashlib.new(name, data).digest(), Mechanism.RSA_PKCS_PSS, params)
        if int(_PKCS1_WITH_HASH[name]) in self._token.mechanisms:
            return self._call_sign(data, _PKCS1_WITH_HASH[name], None)
        return self._sign_raw(_DIGEST_INFO[name] + hashlib.new(name, data).digest())

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        if isinstance(padding, _OAEP):
            if padding.algorithm.name != "sha256":
                raise UnsupportedError("the token decrypts RSA-OAEP with SHA-256 only")
            return self._decrypt(ciphertext, Mechanism.RSA_PKCS_OAEP, _OAEP_256_PARAMS)
        return self._decrypt(ciphertext, Mechanism.RSA_PKCS, None)

    def check_oaep_256(self) -> None:
        """Refuse, with the mechanism named, a token that cannot decrypt RSA-OAEP-256.

        Tokens list CKM_RSA_PKCS_OAEP whatever hashes they take (SoftHSM2 2.6 takes SHA-1
        only), so the check is a round trip: a block sealed here must come back.
        """
        self._require(Mechanism.RSA_PKCS_OAEP, OAEP_256)
        probe = os.urandom(32)
        sealed = self._public.encrypt(
            probe,
            _OAEP(mgf=_MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
        )
        try:
            back = self._decrypt(sealed, Mechanism.RSA_PKCS_OAEP, _OAEP_256_PARAMS)
        except ValueError:
            back = b""
        if back != probe:
            raise UnsupportedError(f"the token does not offer {OAEP_256}")

    def _require_pss(self, alg: str) -> None:
        name = f"sha{alg[2:]}"
        if int(_PSS_WITH_HASH[name]) not in self._token.mechanisms:
            self._require(Mechanism.RSA_PKCS_PSS, f"CKM_{name.upper()}_RSA_PKCS_PSS")

    # --- PKCS#11 calls ----------------------------------------------------------------------
    def _require(self, mechanism: Mechanism, name: str) -> None:
        if int(mechanism) not in self._token.mechanisms:
            raise UnsupportedError(f"the token does not offer {name}")

    def _sign_raw(self, digest_info: bytes) -> bytes:
        self._require(Mechanism.RSA_PKCS, "CKM_RSA_PKCS")
        return self._call_sign(digest_info, Mechanism.RSA_PKCS, None)

    def _call_sign(self, data: bytes, mechanism: Mechanism, param: object) -> bytes:
        if self.role != "sign":
            raise KeyUnusableError("this token key is for decryption, not signing")
        with self._token._lock, token_errors():
            try:
                return bytes(self._private.sign(data, mechanism=mechanism, mechanism_param=param))
            except TOKEN_FAILURES:
                raise
            except p11.PKCS11Error as error:
                raise KeyUnusableError(
                    f"the token refused to sign ({type(error).__name__})"
                ) from None

    def _decrypt(self, ciphertext: bytes, mechanism: Mechanism, param: object) -> bytes:
        if self.role != "decrypt":
            raise KeyUnusableError("this token key is for signing, not decryption")
        with self._token._lock, token_errors():
            try:
                return bytes(
                    self._private.decrypt(ciphertext, mechanism=mechanism, mechanism_param=param)
                )
            except TOKEN_FAILURES:
                raise  # the token is gone or locked: not something the ciphertext decides
            except p11.PKCS11Error:
                # CKR_ENCRYPTED_DATA_INVALID, _LEN_RANGE, or a vendor's generic failure: one
                # outcome, the one pyca gives for bad padding, so no answer can be told apart.
                raise ValueError("decryption failed") from None

    def __repr__(self) -> str:
        return f"TokenRsaKey(label={self.label!r}, role={self.role!r}, [in token])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("token keys cannot be pickled")


_OAEP = padding.OAEP
_PSS = padding.PSS
_MGF1 = padding.MGF1
_OAEP_256_PARAMS = (Mechanism.SHA256, MGF.SHA256, None)
