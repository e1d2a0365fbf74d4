"""Writes the seed corpus: valid inputs made with our own code, plus a few published vectors.

``python -m fuzz --make-seeds`` rewrites ``fuzz/corpus/`` from the fixture keys; each folder
gets a one-line README saying where its seeds came from. Seeds are small on purpose: libFuzzer
takes its default maximum input length from the largest seed.
"""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization

import pushprov
from pushprov import Card, Encoding, Gopc, JweOptions, Pan, jose, openpgp
from pushprov.jose._compact import b64u_decode
from pushprov.jose._jws import sign_jws
from pushprov.openpgp._message import _decrypt, _split_envelope
from pushprov.openpgp._packets import Tag, dearmor, encode_packet

from . import CORPUS
from ._fixtures import AT, jose_keys, pgp_keys

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
_PAN = "4111111111111111"  # the public Visa test number


def _gopc(session: str = "fuzz-session") -> Gopc:
    return Gopc(server_session_id=session, card=Card(Pan(_PAN), "12", "29"))


def _pgp_sealed(encoding: Encoding = Encoding.BINARY) -> bytes:
    keys = pgp_keys()
    return pushprov.seal_gopc(
        _gopc(), sign_with=[keys.peer], encrypt_to=[keys.ours.certificate], at=AT, encoding=encoding
    )


def _jwe_sealed(options: JweOptions | None = None, payload: bytes | None = None) -> bytes:
    keys = jose_keys()
    return pushprov.seal_message(
        _gopc().to_json() if payload is None else payload,
        sign_with=[keys.peer],
        encrypt_to=[keys.ours.public()],
        format="jwe",
        jwe=options,
        at=AT,
    )


def _inner() -> bytes:
    """The decrypted inner packet stream of a message sealed by us."""
    pkesks, seipd = _split_envelope(_pgp_sealed())
    opened = _decrypt(pkesks, seipd, [pgp_keys().ours])
    assert opened is not None
    return opened[2]


def _vector(relative: str) -> bytes:
    return (VECTORS / relative).read_bytes()


def armor() -> tuple[str, dict[str, bytes]]:
    return "sealed GOPCs from pushprov.seal_gopc in each encoding, plus RFC 9580 A.6/A.7", {
        "armored.asc": _pgp_sealed(Encoding.ARMOR),
        "base64.txt": _pgp_sealed(Encoding.BASE64),
        "base64url.txt": _pgp_sealed(Encoding.BASE64URL),
        "binary.pgp": _pgp_sealed(),
        "rfc9580-A.6-cleartext-signed.asc": _vector("rfc9580-appendix-a/A.6-cleartext-signed.asc"),
        "rfc9580-A.7-inline-signed.asc": _vector("rfc9580-appendix-a/A.7-inline-signed.asc"),
    }


def packets() -> tuple[str, dict[str, bytes]]:
    keys = pgp_keys()
    return "binary packets made by pushprov (message, certificate, inner packets)", {
        "message.pgp": _pgp_sealed(),
        "certificate.pgp": keys.ours.certificate.to_bytes(),
        "inner.pgp": _inner(),
    }


def certificate() -> tuple[str, dict[str, bytes]]:
    keys = pgp_keys()
    return "fixture keys from pushprov.openpgp.generate_key, plus RFC 9580 A.1/A.3", {
        "ours.pub.asc": keys.ours.certificate.armor().encode(),
        "ours.pub.pgp": keys.ours.certificate.to_bytes(),
        "ours.sec.asc": keys.ours.armor().encode(),
        "ours.sec.pgp": dearmor(keys.ours.armor().encode())[1],
        "ours.sec.protected.asc": keys.ours.armor(passphrase=b"fuzz").encode(),
        "rfc9580-A.1-v4-ed25519.asc": _vector(
            "rfc9580-appendix-a/A.1-v4-ed25519legacy-key.pub.asc"
        ),
        "rfc9580-A.3-v6.asc": _vector("rfc9580-appendix-a/A.3-v6-certificate.pub.asc"),
    }


def message() -> tuple[str, dict[str, bytes]]:
    return "GOPCs sealed by pushprov.seal_gopc to the fixture key (binary, base64, armor)", {
        "binary.pgp": _pgp_sealed(),
        "base64.txt": _pgp_sealed(Encoding.BASE64),
        "armored.asc": _pgp_sealed(Encoding.ARMOR),
    }


def signed() -> tuple[str, dict[str, bytes]]:
    from .signed import DOCUMENT

    peer = [pgp_keys().peer]
    detached = openpgp.sign_detached(DOCUMENT, sign_with=peer, at=AT)
    return "route octet + pushprov.openpgp sign_inline / sign_cleartext / sign_detached output", {
        "inline.pgp": b"\x00" + openpgp.sign_inline(DOCUMENT, sign_with=peer, at=AT),
        "cleartext.asc": b"\x01" + openpgp.sign_cleartext(DOCUMENT.decode(), sign_with=peer, at=AT),
        "detached.sig": b"\x02" + detached,
        "detached.asc": b"\x02" + openpgp.armor_data(detached),
        "armor.asc": b"\x03" + openpgp.armor_data(detached),
    }


def sandbox() -> tuple[str, dict[str, bytes]]:
    return "GOPCs sealed by pushprov.seal_gopc to the fixture key (base64, armor)", {
        "base64.txt": _pgp_sealed(Encoding.BASE64),
        "armored.asc": _pgp_sealed(Encoding.ARMOR),
    }


def message_inner() -> tuple[str, dict[str, bytes]]:
    inner = _inner()
    deflated = zlib.compressobj(wbits=-15)
    raw = deflated.compress(inner) + deflated.flush()
    return "decrypted inner packets of a pushprov-sealed GOPC, plain and compressed (ZIP, ZLIB)", {
        "signed.pgp": inner,
        "zip.pgp": encode_packet(Tag.COMPRESSED, b"\x01" + raw),
        "zlib.pgp": encode_packet(Tag.COMPRESSED, b"\x02" + zlib.compress(inner)),
    }


def jose_compact() -> tuple[str, dict[str, bytes]]:
    return (
        "JWE GOPCs from pushprov.seal_message (A256GCM, A128CBC-HS256, DEF), plus RFC 7520 5.2",
        {
            "a256gcm.jwe": _jwe_sealed(),
            "a128cbc.jwe": _jwe_sealed(JweOptions(enc="A128CBC-HS256")),
            "deflate.jwe": _jwe_sealed(JweOptions(compress=True)),
            "rfc7520-5.2.jwe": json.loads(
                _vector("rfc7520-cookbook/jwe/5_2.key_encryption_using_rsa-oaep_with_aes-gcm.json")
            )["output"]["compact"].encode(),
        },
    )


def jose_header() -> tuple[str, dict[str, bytes]]:
    seeds = {}
    for name, options in (("a256gcm", None), ("deflate", JweOptions(compress=True))):
        seeds[f"{name}.json"] = b64u_decode(_jwe_sealed(options).split(b".")[0])
    return "protected headers of JWEs from pushprov.seal_message", seeds


def jws() -> tuple[str, dict[str, bytes]]:
    keys = jose_keys()
    payload = _gopc().to_json()
    rfc = json.loads(_vector("rfc7520-cookbook/jws/4_1.rsa_v15_signature.json"))
    return "nested JWSs from pushprov.jose sign_jws (RS256, PS256), plus RFC 7520 4.1", {
        "rs256.jws": sign_jws(payload, keys.peer, "RS256"),
        "ps256.jws": sign_jws(payload, keys.peer, "PS256"),
        "rfc7520-4.1.jws": rfc["output"]["compact"].encode(),
    }


def jwk() -> tuple[str, dict[str, bytes]]:
    keys = jose_keys()
    public = keys.ours.public()
    numbers = public._public
    return "fixture JWKs from pushprov.jose (JWK, JWK set, PEM), plus RFC 7520 3.3", {
        "public.jwk": public.to_json().encode(),
        "public-4096.jwk": jose.generate_jwk(bits=4096, at=AT, kid="big")
        .public()
        .to_json()
        .encode(),
        "private.jwk": keys.ours.to_json(private=True).encode(),
        "set.jwks": json.dumps(
            {"keys": [json.loads(public.to_json()), json.loads(keys.peer.public().to_json())]}
        ).encode(),
        "public.pem": numbers.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "rfc7520-3.3.jwk": _vector("rfc7520-cookbook/jwk/3_3.rsa_public_key.json"),
    }


def gopc() -> tuple[str, dict[str, bytes]]:
    return "GOPC documents from pushprov.Gopc.to_json", {
        "gopc.json": _gopc().to_json(),
        "long-session.json": _gopc("s" * 200).to_json(),
    }


def request() -> tuple[str, dict[str, bytes]]:
    stamp = str(int(AT.timestamp() * 1000))

    def body(request_id: str, **extra: object) -> bytes:
        document = {
            "requestHeader": {"requestId": request_id, "requestTimestamp": stamp},
            "serverSessionId": "fuzz-session",
            "card": {"accountNumber": _PAN, "expiryMonth": "12", "expiryYear": "29"},
            **extra,
        }
        return json.dumps(document).encode()

    return (
        "POST /v1/gopc bodies as tests/service_support.request_body builds them, at the fixed time",
        {
            "plain.json": body("fuzz-1"),
            "base64url.json": body("fuzz-2", encoding="base64url"),
            "jwe.json": body("fuzz-3", format="jwe"),
        },
    )


def auth() -> tuple[str, dict[str, bytes]]:
    basic = base64.b64encode(b"backend:pp_unknown")
    return "route octet + Authorization values: Bearer and Basic, as clients send them", {
        "bearer-gopc.txt": b"\x00Bearer pp_0123456789abcdef",
        "basic-keys.txt": b"\x01Basic " + basic,
        "bearer-echo.txt": b"\x02bearer   pp_x",
    }


def config() -> tuple[str, dict[str, bytes]]:
    return "service.toml as docs/scale-out.md and the README show it", {
        "production.toml": b"""[service]
store = "postgresql://pushprov@db.internal:5432/pushprov?sslmode=verify-full"
store_passphrase_file = "/etc/pushprov/store-passphrase"
env = "production"
host = "0.0.0.0"
port = 8443
tls_cert = "/etc/pushprov/tls.crt"
tls_key = "/etc/pushprov/tls.key"
workers = 2
key_refresh_seconds = 1.0
""",
        "flat.toml": b'port = 9443\nformat = "jwe"\ntimestamp_skew = 30\nmax_body_bytes = 32768\n',
    }


WRITERS: dict[str, Callable[[], tuple[str, dict[str, bytes]]]] = {
    "armor": armor,
    "packets": packets,
    "certificate": certificate,
    "message": message,
    "message_inner": message_inner,
    "sandbox": sandbox,
    "signed": signed,
    "jose_compact": jose_compact,
    "jose_header": jose_header,
    "jws": jws,
    "jwk": jwk,
    "gopc": gopc,
    "request": request,
    "auth": auth,
    "config": config,
}


def write_all() -> None:
    for target, writer in WRITERS.items():
        where, seeds = writer()
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(
            f"Seeds: {where}. Made by `python -m fuzz --make-seeds`.\n"
        )
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
