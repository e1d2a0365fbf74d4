"""The OpenPGP envelope: RFC 9580 v4 RSA profile on pyca/cryptography primitives."""

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
    "contains_secret_key",
    "decode_message",
    "encode_message",
    "generate_key",
    "open_message",
    "read_certificates",
    "read_secret_keys",
    "seal",
]
