"""The OpenPGP envelope: RFC 9580 v4 RSA profile on pyca/cryptography primitives."""

from ._armor import armor_data, dearmor_data
from ._cleartext import sign_cleartext, verify_cleartext
from ._detached import sign_detached, sign_inline, verify_detached, verify_inline
from ._keys import (
    Certificate,
    KeyInfo,
    SecretKey,
    contains_secret_key,
    generate_key,
    read_certificates,
    read_secret_keys,
)
from ._message import decode_message, encode_message, open_message, seal
from ._rsa import PrivateKeyOps

__all__ = [
    "Certificate",
    "KeyInfo",
    "PrivateKeyOps",
    "SecretKey",
    "armor_data",
    "contains_secret_key",
    "dearmor_data",
    "decode_message",
    "encode_message",
    "generate_key",
    "open_message",
    "read_certificates",
    "read_secret_keys",
    "seal",
    "sign_cleartext",
    "sign_detached",
    "sign_inline",
    "verify_cleartext",
    "verify_detached",
    "verify_inline",
]
