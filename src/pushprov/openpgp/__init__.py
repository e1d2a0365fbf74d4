"""The OpenPGP envelope: RFC 9580 v4 RSA profile on pyca/cryptography primitives.

Laid out as Sequoia is: the certificate model (``_cert``: ``Certificate``, ``ComponentKey``,
``KeyInfo``), secret keys (``_secret``), parsing and self-signature checks (``_parse``),
secret-key protection (``_s2k``), key generation (``_builder``), messages (``_message``), and
detached, inline and cleartext signatures and bare armor (``_detached``, ``_cleartext``,
``_armor``) for the SOP face.
"""

from ._armor import armor_data, dearmor_data
from ._builder import certify_keys, generate_key
from ._cert import Certificate, ComponentKey, KeyInfo
from ._cleartext import sign_cleartext, verify_cleartext
from ._detached import sign_detached, sign_inline, verify_detached, verify_inline
from ._message import decode_message, encode_message, message_recipients, open_message, seal
from ._parse import contains_secret_key, read_certificates, read_secret_keys
from ._rsa import PrivateKeyOps
from ._secret import SecretKey, secret_key_from_ops

__all__ = [
    "Certificate",
    "ComponentKey",
    "KeyInfo",
    "PrivateKeyOps",
    "SecretKey",
    "armor_data",
    "certify_keys",
    "contains_secret_key",
    "dearmor_data",
    "decode_message",
    "encode_message",
    "generate_key",
    "message_recipients",
    "open_message",
    "read_certificates",
    "read_secret_keys",
    "seal",
    "secret_key_from_ops",
    "sign_cleartext",
    "sign_detached",
    "sign_inline",
    "verify_cleartext",
    "verify_detached",
    "verify_inline",
]
