"""JWE seal/open throughput against the floor: the raw pyca/cryptography work of the same kind.

``run(seconds)`` returns ``(case, msgs_per_s, ratio)`` rows, ratio = floor rate / our rate
(1.0 = as fast as bare RSA + AES; the target is at most 1.25). Both sides run interleaved in
short rounds on one core, and each rate is the median over rounds, so drifting clocks and
background load hit both alike. ``python bench/jose_cases.py [seconds]`` prints RESULT lines.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushprov._card import Card, Gopc, Pan
from pushprov.jose import generate_jwk, open_jwe, seal_jwe

_AT = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
_OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
_BATCH = 16  # operations per timed round: a few milliseconds, well above timer resolution


def _payload() -> bytes:
    card = Card(account_number=Pan("4111111111111111"), expiry_month="12", expiry_year="29")
    return Gopc(server_session_id="bench-session-" + "0123456789abcdef" * 2, card=card).to_json()


@contextmanager
def _one_core() -> Iterator[None]:
    """Pin this process to one CPU for the measurement, then restore its affinity."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _rate(operation: Callable[[], object]) -> float:
    start = time.perf_counter()
    for _ in range(_BATCH):
        operation()
    return _BATCH / (time.perf_counter() - start)


def _compare(
    ours: Callable[[], object], floor: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Median rates of ``ours`` and ``floor`` over interleaved rounds lasting ``seconds``."""
    ours(), floor()  # warm caches and lazy imports outside the clock
    our_rates: list[float] = []
    floor_rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(our_rates) < 5:
        # Alternate which side goes first, so neither always inherits a warm or cold state.
        if len(our_rates) % 2:
            our_rates.append(_rate(ours))
            floor_rates.append(_rate(floor))
        else:
            floor_rates.append(_rate(floor))
            our_rates.append(_rate(ours))
    return statistics.median(our_rates), statistics.median(floor_rates)


def run(seconds: float) -> list[tuple[str, float, float]]:
    """``("jwe-seal-2048", msgs/s, ratio)`` and ``("jwe-open-2048", ...)``, in ``seconds``."""
    payload = _payload()
    signer = generate_jwk(bits=2048, at=_AT)
    recipient = generate_jwk(bits=2048, at=_AT)
    signer_public, recipient_public = signer.public(), recipient.public()
    # The floor uses the very same RSA keys, straight through pyca/cryptography.
    sign_key, decrypt_key = signer._secret, recipient._secret
    assert isinstance(sign_key, rsa.RSAPrivateKey) and isinstance(decrypt_key, rsa.RSAPrivateKey)
    verify_key, encrypt_key = sign_key.public_key(), decrypt_key.public_key()

    def seal() -> bytes:
        return seal_jwe(payload, sign_with=signer, encrypt_to=recipient_public, at=_AT)

    def floor_seal() -> tuple[bytes, bytes, bytes, bytes]:
        signature = sign_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
        cek, iv = os.urandom(32), os.urandom(12)
        encrypted_key = encrypt_key.encrypt(cek, _OAEP)
        return signature, encrypted_key, iv, AESGCM(cek).encrypt(iv, payload, None)

    token = seal()
    signature, encrypted_key, iv, ciphertext = floor_seal()

    def open_() -> object:
        return open_jwe(token, decrypt_with=[recipient], verify_with=[signer_public], at=_AT)

    def floor_open() -> bytes:
        cek = decrypt_key.decrypt(encrypted_key, _OAEP)
        plaintext = AESGCM(cek).decrypt(iv, ciphertext, None)
        verify_key.verify(signature, plaintext, padding.PKCS1v15(), hashes.SHA256())
        return plaintext

    results = []
    with _one_core():
        for name, ours, floor in (
            ("jwe-seal-2048", seal, floor_seal),
            ("jwe-open-2048", open_, floor_open),
        ):
            our_rate, floor_rate = _compare(ours, floor, seconds / 2)
            results.append((name, our_rate, floor_rate / our_rate))
    return results


if __name__ == "__main__":
    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    for case, rate, ratio in run(budget):
        print(f"RESULT {case} {rate:.1f} {ratio:.3f}")
