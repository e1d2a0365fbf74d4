"""Verify before promote: prove a key works the way it is about to be used."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence

from .. import openpgp
from .._errors import PushprovError
from .._policy import Policy
from ..openpgp._packets import FramingError, Tag, read_packets
from ._errors import SelfTestFailedError

__all__ = ["self_test_ours", "self_test_partner"]


def _probe(fingerprint: str) -> bytes:
    return b"pushprov self-test " + fingerprint.encode() + b" " + os.urandom(16).hex().encode()


def _policy_ok(cert: openpgp.Certificate, policy: Policy, at: _dt.datetime) -> None:
    problems = cert.policy_problems(policy, at)
    if problems:
        raise SelfTestFailedError(f"key {cert.fingerprint}: " + "; ".join(problems))


def self_test_ours(
    key: openpgp.SecretKey,
    *,
    at: _dt.datetime,
    policy: Policy,
    test_message: bytes | None = None,
    partner_certs: Sequence[openpgp.Certificate] = (),
) -> None:
    """Seal to ourselves with the key and open it again; open the partner's test message too."""
    _policy_ok(key.certificate, policy, at)
    own_subkeys = {info.fingerprint for info in key.key_infos()}
    probe = _probe(key.fingerprint)
    try:
        sealed = openpgp.seal(
            probe, sign_with=[key], encrypt_to=[key.certificate], at=at, policy=policy
        )
        opened = openpgp.open_message(
            sealed, decrypt_with=[key], verify_with=[key.certificate], at=at, policy=policy
        )
    except PushprovError as error:
        raise SelfTestFailedError(
            f"round trip with {key.fingerprint} failed ({error.code})"
        ) from None
    if (
        opened.plaintext != probe
        or opened.signers != (key.fingerprint,)
        or opened.decryption_key not in own_subkeys
    ):
        raise SelfTestFailedError(f"round trip with {key.fingerprint} gave a wrong result")
    if test_message is None:
        return
    try:
        partner = openpgp.open_message(
            test_message, decrypt_with=[key], verify_with=partner_certs, at=at, policy=policy
        )
    except PushprovError as error:
        raise SelfTestFailedError(
            f"the partner's test message does not open with {key.fingerprint} ({error.code})"
        ) from None
    if partner.decryption_key not in own_subkeys:
        raise SelfTestFailedError("the partner's test message was not opened by this key")


def self_test_partner(
    cert: openpgp.Certificate, *, signer: openpgp.SecretKey, at: _dt.datetime, policy: Policy
) -> None:
    """Seal to the certificate; the message must parse and name exactly its encryption subkey."""
    _policy_ok(cert, policy, at)
    try:
        target = cert.encryption_key(at, policy).key_id
        sealed = openpgp.seal(
            _probe(cert.fingerprint), sign_with=[signer], encrypt_to=[cert], at=at, policy=policy
        )
        packets = list(read_packets(sealed))
    except (PushprovError, FramingError):
        raise SelfTestFailedError(f"sealing to {cert.fingerprint} failed") from None
    tags = [tag for tag, _ in packets]
    key_ids = [body[1:9] for tag, body in packets if tag == Tag.PKESK]
    if tags != [Tag.PKESK, Tag.SEIPD] or key_ids != [target]:
        raise SelfTestFailedError(
            f"a message sealed to {cert.fingerprint} does not target its encryption subkey"
        )
