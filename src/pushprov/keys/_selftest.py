"""Verify before promote: prove a key works the way it is about to be used.

OpenPGP keys do both jobs of their side, so one round trip covers ours and one sealed probe a
partner's. A JWK does one job, and each is proved on its own (``self_test_jwk``): ours signs a
probe that its stored public half verifies, or opens a probe sealed to its stored public half;
a partner's encryption key gets a probe sealed to it; a partner's signing key can only be
checked against the policy, unless the partner sent a test message it signed.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence

from .. import hsm, jose, openpgp
from .._errors import PassphraseError, PushprovError
from .._policy import Policy
from ._errors import SelfTestFailedError
from ._model import Role

__all__ = ["jwk_policy_problems", "self_test_jwk", "self_test_ours", "self_test_partner"]

_TOKEN_ERRORS = (hsm.TokenUnavailableError, hsm.TokenKeyNotFoundError, PassphraseError)
_USE = {Role.SIGN: "sig", Role.VERIFY: "sig", Role.DECRYPT: "enc", Role.ENCRYPT: "enc"}


def _probe(fingerprint: str) -> bytes:
    return b"pushprov self-test " + fingerprint.encode() + b" " + os.urandom(16).hex().encode()


def _policy_ok(cert: openpgp.Certificate, policy: Policy, at: _dt.datetime) -> None:
    problems = cert.policy_problems(policy, at)
    if problems:
        raise SelfTestFailedError(f"key {cert.fingerprint}: " + "; ".join(problems))


def self_test_ours(
    key: openpgp.SecretKey,
    *,
    policy: Policy,
    at: _dt.datetime,
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
    except _TOKEN_ERRORS:
        raise  # an HSM key's token is away or refused the PIN: say that, not "self-test failed"
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
    cert: openpgp.Certificate, *, signer: openpgp.SecretKey, policy: Policy, at: _dt.datetime
) -> None:
    """Seal to the certificate; the message must parse and name exactly its encryption subkey."""
    _policy_ok(cert, policy, at)
    try:
        target = cert.encryption_key(policy, at).key_id.hex().upper()
        sealed = openpgp.seal(
            _probe(cert.fingerprint), sign_with=[signer], encrypt_to=[cert], policy=policy, at=at
        )
        recipients = openpgp.message_recipients(sealed, policy=policy)
    except PushprovError:
        raise SelfTestFailedError(f"sealing to {cert.fingerprint} failed") from None
    if recipients != (target,):
        raise SelfTestFailedError(
            f"a message sealed to {cert.fingerprint} does not target its encryption subkey"
        )


def jwk_policy_problems(
    key: jose.JwkKey, role: Role, policy: Policy, at: _dt.datetime
) -> list[str]:
    """What keeps a JWK from the profile in ``role``: the JWK's own checks for the JOSE use
    the role needs (empty: it complies)."""
    return key.policy_problems(policy, at, use=_USE[role])


def self_test_jwk(
    public: jose.JwkKey,
    role: Role,
    *,
    policy: Policy,
    at: _dt.datetime,
    secret: jose.JwkKey | None = None,
    test_message: bytes | None = None,
    partner_keys: Sequence[jose.JwkKey] = (),
    our_keys: Sequence[jose.JwkKey] = (),
) -> None:
    """Prove one JWK in its role. ``public`` is the stored public half; ``secret`` the stored
    private key (ours); ``test_message`` a JWE from the partner: for our decryption key, sealed
    to it and signed by one of ``partner_keys``; for a partner's signing key, signed by it and
    sealed to one of ``our_keys`` (our decryption keys)."""
    problems = jwk_policy_problems(public, role, policy, at)
    if problems:
        raise SelfTestFailedError(f"key {public.kid}: " + "; ".join(problems))
    if role is Role.SIGN:
        assert secret is not None  # the keystore passes our secret for our roles
        _signs(secret, public, policy, at)
    elif role is Role.DECRYPT:
        assert secret is not None
        _opens(secret, public, policy, at)
        if test_message is not None:
            _opens_partner_message(test_message, [secret], partner_keys, policy, at)
    elif role is Role.ENCRYPT:
        _is_sealed_to(public, policy, at)
    elif test_message is not None:
        # A partner's signing key: we cannot sign with it, so without a message it signed the
        # policy checks above are all there is.
        if not our_keys:
            raise SelfTestFailedError(
                "opening the partner's test message needs one of our JWK decryption keys"
            )
        # Verified against this key alone: opening proves the partner signed with it.
        _opens_partner_message(test_message, our_keys, [public], policy, at)


def _throwaway(use: str, policy: Policy, at: _dt.datetime) -> jose.JwkKey:
    """A key made for one probe and dropped: the other end of a round trip we cannot close
    with keys we hold (a partner never gives us its private keys)."""
    bits = -(-policy.min_rsa_bits // 256) * 256
    return jose.generate_jwk(bits=bits, at=at, policy=policy, use=use)


def _signs(secret: jose.JwkKey, public: jose.JwkKey, policy: Policy, at: _dt.datetime) -> None:
    """Sign a probe with our key, sealed to a throwaway recipient; the stored public half must
    verify it."""
    recipient = _throwaway("enc", policy, at)
    probe = _probe(public.kid)
    try:
        token = jose.seal_jwe(
            probe, sign_with=secret, encrypt_to=recipient.public(), at=at, policy=policy
        )
        opened = jose.open_jwe(
            token, decrypt_with=[recipient], verify_with=[public], at=at, policy=policy
        )
    except PushprovError as error:
        raise SelfTestFailedError(f"signing with {public.kid} failed ({error.code})") from None
    if opened.plaintext != probe or [s.signing_key for s in opened.signatures] != [public.kid]:
        raise SelfTestFailedError(f"signing with {public.kid} gave a wrong result")


def _opens(secret: jose.JwkKey, public: jose.JwkKey, policy: Policy, at: _dt.datetime) -> None:
    """Seal a probe to the stored public half (signed by a throwaway key); ours must open it."""
    signer = _throwaway("sig", policy, at)
    probe = _probe(public.kid)
    try:
        token = jose.seal_jwe(probe, sign_with=signer, encrypt_to=public, at=at, policy=policy)
        opened = jose.open_jwe(
            token, decrypt_with=[secret], verify_with=[signer.public()], at=at, policy=policy
        )
    except PushprovError as error:
        raise SelfTestFailedError(f"round trip with {public.kid} failed ({error.code})") from None
    if opened.plaintext != probe or opened.decryption_key != public.kid:
        raise SelfTestFailedError(f"round trip with {public.kid} gave a wrong result")


def _opens_partner_message(
    token: bytes,
    decrypt_with: Sequence[jose.JwkKey],
    verify_with: Sequence[jose.JwkKey],
    policy: Policy,
    at: _dt.datetime,
) -> None:
    try:
        jose.open_jwe(
            token, decrypt_with=decrypt_with, verify_with=verify_with, at=at, policy=policy
        )
    except PushprovError as error:
        raise SelfTestFailedError(
            f"the partner's test message does not open and verify ({error.code})"
        ) from None


def _is_sealed_to(public: jose.JwkKey, policy: Policy, at: _dt.datetime) -> None:
    """Seal a probe to the partner's key (signed by a throwaway key): the RSA work must succeed
    and the token must name the key and its algorithm, with a key wrapped to its modulus."""
    signer = _throwaway("sig", policy, at)
    try:
        token = jose.seal_jwe(
            _probe(public.kid), sign_with=signer, encrypt_to=public, at=at, policy=policy
        )
        info = jose.describe_jwe(token, policy=policy)
    except PushprovError as error:
        raise SelfTestFailedError(f"sealing to {public.kid} failed ({error.code})") from None
    if (
        info.kid != public.kid
        or info.alg != (public.alg or policy.jwe_alg)
        or info.encrypted_key_bytes != (public.bits + 7) // 8
    ):
        raise SelfTestFailedError(f"a message sealed to {public.kid} does not target it")
