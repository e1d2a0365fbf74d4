"""Throughput of sealing and opening GOPCs against the raw pyca/cryptography floor, one core.

For each case the floor is the same RSA and AES work done directly with pyca/cryptography:
  seal:  RSA PKCS#1 v1.5 SHA-384 signature over the GOPC + RSA-encrypt a 35-octet session-key
         block + AES-256-CFB over the GOPC;
  open:  RSA-decrypt the session-key block + AES-256-CFB decrypt + verify the SHA-384 signature.
Ours and the floor run in alternating rounds in the same process, so drift hits both; the
figure is the median over rounds. Output, one line per case:

    RESULT <case> <msg/s> <ratio-to-floor>

where ratio = floor rate / our rate (1.00 = as fast as the floor; target <= 1.25).
The JWE cases (jwe-seal-2048, jwe-open-2048) come from bench/jose_cases.py, whose floor is the
raw pyca work of JWS RS256 sign + RSA-OAEP-256 key wrap + AES-256-GCM (and the mirror).
Usage: python bench/run.py [--seconds 3.0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

import jose_cases  # bench/ is on sys.path when this file runs as a script
import pushprov
from pushprov import GOOGLE_PROFILE, openpgp

AT = dt.datetime.now(dt.UTC).replace(microsecond=0)
SESSION = "c2FuZGJveC1zZXNzaW9uLWlkLWZyb20tdGhlLWdvb2dsZS1wYXktc2Rr"


def _gopc() -> pushprov.Gopc:
    # A Luhn-valid number from a test range, built at run time (no card number ships in code).
    from pushprov.cli._demo import random_test_pan

    card = pushprov.Card(account_number=random_test_pan(), expiry_month="12", expiry_year="29")
    return pushprov.Gopc(server_session_id=SESSION, card=card)


def _rate(fn: Callable[[], object], seconds: float) -> float:
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        fn()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _compare(
    ours: Callable[[], object], floor: Callable[[], object], seconds: float
) -> tuple[float, float]:
    rounds = 5
    ours_rates, floor_rates = [], []
    for _ in range(rounds):
        floor_rates.append(_rate(floor, seconds / (2 * rounds)))
        ours_rates.append(_rate(ours, seconds / (2 * rounds)))
    ours_rate = statistics.median(ours_rates)
    return ours_rate, statistics.median(floor_rates) / ours_rate


def _floor_seal(
    signer: rsa.RSAPrivateKey, recipient: rsa.RSAPublicKey, payload: bytes
) -> Callable[[], object]:
    def run() -> object:
        signature = signer.sign(payload, padding.PKCS1v15(), hashes.SHA384())
        key = os.urandom(32)
        wrapped = recipient.encrypt(b"\x09" + key + b"\x00\x00", padding.PKCS1v15())
        encryptor = Cipher(algorithms.AES(key), CFB(bytes(16))).encryptor()
        return signature, wrapped, encryptor.update(payload) + encryptor.finalize()

    return run


def _floor_open(
    signer: rsa.RSAPrivateKey, recipient: rsa.RSAPrivateKey, payload: bytes
) -> Callable[[], object]:
    signature = signer.sign(payload, padding.PKCS1v15(), hashes.SHA384())
    verifier = signer.public_key()
    key = os.urandom(32)
    wrapped = recipient.public_key().encrypt(b"\x09" + key + b"\x00\x00", padding.PKCS1v15())
    encryptor = Cipher(algorithms.AES(key), CFB(bytes(16))).encryptor()
    ciphertext = encryptor.update(payload) + encryptor.finalize()

    def run() -> object:
        block = recipient.decrypt(wrapped, padding.PKCS1v15())
        decryptor = Cipher(algorithms.AES(block[1:33]), CFB(bytes(16))).decryptor()
        clear = decryptor.update(ciphertext) + decryptor.finalize()
        verifier.verify(signature, clear, padding.PKCS1v15(), hashes.SHA384())
        return clear

    return run


def _private(secret: openpgp.SecretKey, fingerprint: str | None = None) -> rsa.RSAPrivateKey:
    """The pyca key behind one of our keys, so the floor uses the very same RSA keys."""
    backends = secret._backends
    chosen = bytes.fromhex(fingerprint) if fingerprint else next(iter(backends))
    return backends[chosen]._key  # type: ignore[attr-defined,no-any-return]


def pgp_cases(bits: int, seconds: float) -> list[tuple[str, float, float]]:
    issuer = openpgp.generate_key("Bench issuer <b@issuer.example>", bits=bits, at=AT)
    google = openpgp.generate_key("Bench google <b@google.example>", bits=bits, at=AT)
    gopc = _gopc()
    payload = gopc.to_json()
    signer = _private(issuer, issuer.fingerprint)
    google_encryption = (
        google.certificate.encryption_key(GOOGLE_PROFILE, AT).fingerprint.hex().upper()
    )
    decryptor = _private(google, google_encryption)

    def seal() -> bytes:
        return pushprov.seal_gopc(gopc, sign_with=[issuer], encrypt_to=[google.certificate], at=AT)

    sealed = seal()

    def open_() -> object:
        return pushprov.open_gopc(
            sealed,
            session_id=SESSION,
            decrypt_with=[google],
            verify_with=[issuer.certificate],
            at=AT,
        )

    results = []
    rate, ratio = _compare(seal, _floor_seal(signer, decryptor.public_key(), payload), seconds)
    results.append((f"pgp-seal-{bits}", rate, ratio))
    rate, ratio = _compare(open_, _floor_open(signer, decryptor, payload), seconds)
    results.append((f"pgp-open-{bits}", rate, ratio))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="time per case (ours + floor)")
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks
    results = pgp_cases(2048, args.seconds) + pgp_cases(4096, args.seconds)
    results += jose_cases.run(args.seconds)
    for case, rate, ratio in results:
        print(f"RESULT {case} {rate:.1f} {ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
