"""Token-backed against software-key OpenPGP seals and opens: the cost of PKCS#11.

Both keys are RSA-3072 (the default) and do the same work per GOPC; only where the private
operation runs differs: in this process (pyca/cryptography) or in a SoftHSM2 token through
python-pkcs11. SoftHSM2 is software too, so the difference is the PKCS#11 overhead (session
lock, marshalling, the token's own RSA code). A throwaway token is made in a temporary
directory under its own SOFTHSM2_CONF. Rounds alternate, the figure is the median. Output:

    RESULT hsm-seal-3072 <token msg/s> <software msg/s> <ratio>
    RESULT hsm-open-3072 <token msg/s> <software msg/s> <ratio>
    RESULT hsm-store-seal-3072 <token msg/s> <software msg/s> <ratio>
    RESULT hsm-sign-seam-3072 <sign_digest/s> <bare C_Sign/s> <ratio>
    RESULT hsm-sign-rsa-3072 <bare C_Sign/s> <pyca sign/s> <ratio>

hsm-store-seal is the key as the key store and the service hold it (``hsm.TokenCustody``: the
token opened once, the key found again after a loss). The last two lines split the seal ratio:
pushprov's own share (the seam's ``sign_digest`` against the same C_Sign, CKM_RSA_PKCS over
the DigestInfo, called on python-pkcs11 directly) and the token's (that bare C_Sign against
pyca/cryptography's signature over the same digest).

where ratio = software rate / token rate (target <= 1.3 for seal).
Usage: python bench/hsm.py [--seconds 3.0] [--module /usr/lib/softhsm/libsofthsm2.so]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import Mechanism

from pushprov import Card, Gopc, Pan, hsm, open_gopc, openpgp, seal_gopc

AT = dt.datetime.now(dt.UTC).replace(microsecond=0)
SESSION = "aHNtLWJlbmNoLXNlc3Npb24"
DIGEST = hashlib.sha384(b"bench").digest()
SHA384_DIGEST_INFO = bytes.fromhex("3041300d060960864801650304020205000430")
CARD = Card(account_number=Pan("4111111111111111"), expiry_month="12", expiry_year="29")


def _rate(step: Callable[[], object], seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        count += 1
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per round and side")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--module", default="/usr/lib/softhsm/libsofthsm2.so")
    args = parser.parse_args()
    util = shutil.which("softhsm2-util")
    if util is None or not Path(args.module).is_file():
        print("SoftHSM2 is not installed (scripts/system-deps.sh installs it)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "tokens").mkdir()
        conf = home / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {home / 'tokens'}\nlog.level = ERROR\n")
        os.environ["SOFTHSM2_CONF"] = str(conf)
        pin = home / "pin"
        pin.write_text("bench-pin\n")
        init = ["--init-token", "--free", "--label", "bench", "--pin", "bench-pin"]
        subprocess.run([util, *init, "--so-pin", "bench-so"], check=True, capture_output=True)
        uri = f"pkcs11:token=bench?module-path={args.module}&pin-source=file:{pin}"
        with hsm.open_token(uri) as token:
            made = hsm.generate_openpgp_key(token, "Bench HSM <b@x>", label="b", at=AT)
            in_token, primary, subkey = made
            custody = hsm.Custody(sign=primary.uri(), decrypt=subkey.uri())
            held = hsm.TokenCustody(module_path=args.module, pin_source=f"file:{pin}")
            from_store = held.open_openpgp_key(in_token.certificate, custody)
            software = openpgp.generate_key("Bench software <s@x>", at=AT)
            pyca = rsa.generate_private_key(65537, 3072)
            google = openpgp.generate_key("Google <g@x>", at=AT)
            gopc = Gopc(server_session_id=SESSION, card=CARD)

            def seal(signer: openpgp.SecretKey, to: openpgp.Certificate) -> Callable[[], bytes]:
                return lambda: seal_gopc(gopc, sign_with=[signer], encrypt_to=[to], at=AT)

            def opener(key: openpgp.SecretKey) -> Callable[[], object]:
                sealed = seal(google, key.certificate)()
                return lambda: open_gopc(
                    sealed,
                    session_id=SESSION,
                    decrypt_with=[key],
                    verify_with=[google.certificate],
                    at=AT,
                )

            cases = {
                "hsm-seal-3072": (
                    seal(in_token, google.certificate),
                    seal(software, google.certificate),
                ),
                "hsm-open-3072": (opener(in_token), opener(software)),
                "hsm-store-seal-3072": (
                    seal(from_store, google.certificate),
                    seal(software, google.certificate),
                ),
                "hsm-sign-seam-3072": (
                    lambda: primary.sign_digest(9, DIGEST),  # 9: SHA-384
                    lambda: primary._private.sign(
                        SHA384_DIGEST_INFO + DIGEST, mechanism=Mechanism.RSA_PKCS
                    ),
                ),
                "hsm-sign-rsa-3072": (
                    lambda: primary._private.sign(
                        SHA384_DIGEST_INFO + DIGEST, mechanism=Mechanism.RSA_PKCS
                    ),
                    lambda: pyca.sign(DIGEST, padding.PKCS1v15(), Prehashed(hashes.SHA384())),
                ),
            }
            for name, (ours, floor) in cases.items():
                token_rates, soft_rates = [], []
                for _ in range(args.rounds):
                    token_rates.append(_rate(ours, args.seconds))
                    soft_rates.append(_rate(floor, args.seconds))
                tok, soft = statistics.median(token_rates), statistics.median(soft_rates)
                print(f"RESULT {name} {tok:.1f} {soft:.1f} {soft / tok:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
