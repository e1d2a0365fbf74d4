"""The OpenPGP envelope: RFC 9580 v4 RSA profile on pyca/cryptography primitives.

Laid out as Sequoia is: the certificate model (``_cert``: ``Certificate``, ``ComponentKey``,
``KeyInfo``), secret keys (``_secret``), parsing and self-signature checks (``_parse``),
secret-key protection (``_s2k``), key generation (``_builder``) and messages (``_message``).
"""

from ._builder import generate_key
from ._cert import Certificate, ComponentKey, KeyInfo
from ._message import decode_message, encode_message, message_recipients, open_message, seal
from ._parse import contains_secret_key, read_certificates, read_secret_keys
from ._rsa import PrivateKeyOps
from ._secret import SecretKey

__all__ = [
    "Certificate",
    "ComponentKey",
    "KeyInfo",
    "PrivateKeyOps",
    "SecretKey",
    "contains_secret_key",
    "decode_message",
    "encode_message",
    "generate_key",
    "message_recipients",
    "open_message",
    "read_certificates",
    "read_secret_keys",
    "seal",
]
