"""Human-readable output shows control characters instead of obeying them (issue 14, finding 8):
one helper, ``pushprov._text.printable``, at every render site."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from pushprov import openpgp
from pushprov._clock import as_unix
from pushprov._text import printable, printable_lines
from pushprov.cli._main import main
from pushprov.keys import KeyStatus, ServiceKeys
from pushprov.openpgp._algorithms import HASH_IDS, new_hash
from pushprov.openpgp._cert import Certificate, uid_data
from pushprov.openpgp._packets import Tag, encode_packet
from pushprov.openpgp._signature import KeyFlags, SigType, Sub, make_signature
from pushprov.service._dashboard import render_dashboard

NOW = dt.datetime.now(dt.UTC)

# The finding's user ID: a newline that starts a forged "policy ok" line, then ESC[8m, which
# makes a terminal hide whatever follows (the real "NOT OK" line), and a bidi override.
HOSTILE = "Evil <e@x.example>\n  policy   ok\x1b[8m\u202e"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Issuer <ops@example>", "Issuer <ops@example>"),
        ("Zoë 漢字 <z@example>", "Zoë 漢字 <z@example>"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x00\x1b[8m\x7f", "\\x00\\x1b[8m\\x7f"),
        ("c1 \x85 \x9b", "c1 \\x85 \\x9b"),
        ("\u202aLRE \u202eRLO \u2066LRI \u2069PDI", "\\u202aLRE \\u202eRLO \\u2066LRI \\u2069PDI"),
        ("\u200e\u200f\u061c\u2028\u2029", "\\u200e\\u200f\\u061c\\u2028\\u2029"),
        ("C:\\x1b is not an escape", "C:\\\\x1b is not an escape"),
    ],
)
def test_printable_escapes_controls_bidi_and_backslash(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable_lines([text, text]) == f"{shown}\n{shown}\n".encode()


def test_printable_leaves_no_character_a_terminal_obeys() -> None:
    every = "".join(chr(code) for code in range(0x3000))
    shown = printable(every)
    assert re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown) is None


def _certificate_with_user_id(uid: str) -> str:
    """A certificate whose self-signed user ID is ``uid``: generate_key refuses such a user ID,
    so the certification is made here, over the hostile bytes, with the key's own primary."""
    key = openpgp.generate_key("placeholder <p@x.example>", bits=2048, at=NOW)
    primary = key.certificate._primary
    hasher = new_hash(HASH_IDS["SHA384"])
    hasher.update(uid_data(primary, uid.encode()))
    body = make_signature(
        key._backends[primary.fingerprint],
        fingerprint=primary.fingerprint,
        sig_type=SigType.POSITIVE_CERT,
        hash_algo=HASH_IDS["SHA384"],
        data_hash=hasher,
        created=as_unix(NOW),
        subpackets=[
            (Sub.KEY_FLAGS, bytes([KeyFlags.CERTIFY | KeyFlags.SIGN])),
            (Sub.KEY_EXPIRATION, (365 * 86400).to_bytes(4, "big")),
        ],
    )
    signature = encode_packet(Tag.SIGNATURE, body)
    hostile = Certificate(primary, [(uid.encode(), [signature])], key.certificate._subkeys)
    return str(hostile.armor())


def test_key_inspect_shows_a_hostile_user_id_escaped_on_one_line(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    path = tmp_path / "evil.asc"
    path.write_text(_certificate_with_user_id(HOSTILE))
    assert openpgp.read_certificates(path.read_bytes())[0].user_ids == (HOSTILE,)
    # Inspected a day past its expiry: the real verdict is NOT OK.
    later = (NOW + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert main(["key", "inspect", str(path), "--at", later]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert "\x1b" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert f"  user ID  {printable(HOSTILE)}" in lines
    policy_lines = [line for line in lines if line.startswith("  policy")]
    assert len(policy_lines) == 1 and policy_lines[0].startswith("  policy   NOT OK")
    # The JSON output keeps the data exactly as it is, for machines.
    assert main(["key", "inspect", str(path), "--json"]) == 0
    assert '"Evil <e@x.example>\\n  policy   ok\\u001b[8m' in capsysbinary.readouterr().out.decode()


def test_the_dashboard_shows_controls_in_key_data_escaped() -> None:
    status = KeyStatus(
        id="ABCD\u202eDCBA", format="pgp", owner="ours\x1b[8m", roles=("sign",), state="active",
        expires=None, created=NOW,
    )  # fmt: skip
    keys = ServiceKeys(
        version="1", signers=(), recipients=(), decryptors=(), verifiers=(), published=(),
        inventory=(status,), warnings=("key x\nforged line\x1b[2J",),
    )  # fmt: skip
    page = render_dashboard(keys, {}, env="sandbox", at=NOW)
    assert "\x1b" not in page and "\u202e" not in page
    assert "ABCD\\u202eDCBA" in page and "ours\\x1b[8m" in page
    assert "<li>key x\\x0aforged line\\x1b[2J</li>" in page
