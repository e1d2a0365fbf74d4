"""What the ``keys`` commands print: text for people, ``--json`` for machines."""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

from .. import hsm, jose, openpgp
from .._clock import from_unix
from .._text import printable_lines
from ..keys import Environment, Finding, KeyRecord, Keystore, key_warnings, partner_use
from ..store import AuditEntry
from ._io import json_output

__all__ = ["partner_use_lines", "render_audit", "render_list", "render_record"]


def partner_use_lines(records: tuple[KeyRecord, ...]) -> list[dict[str, str | None]]:
    """When the partner last used each live key it uses (``keys check``)."""
    return [
        {"key_id": key_id, "partner_last": _iso(when), "seen": how}
        for key_id, how, when in partner_use(records)
    ]


def render_list(
    ks: Keystore,
    env: Environment,
    version: int,
    records: tuple[KeyRecord, ...],
    at: _dt.datetime,
    as_json: bool,
) -> bytes:
    if as_json:
        return json_output(
            {"env": env.value, "version": version, "keys": [_record(ks, r, at) for r in records]}
        )
    lines = [f"{env.value} keyring, version {version}"]
    for r in records:
        notes = "; ".join(f.message.replace(f"key {r.key_id} ", "") for f in _warnings(ks, r, at))
        expires = r.expires.date().isoformat() if r.expires else "never"
        partner = f"  partner {r.partner.value}" if r.partner is not None else ""
        lines.append(
            f"{r.key_id}  {r.owner:<8} {r.state.value:<9} {','.join(sorted(r.roles)):<14} "
            f"created {r.created.date().isoformat()}  expires {expires}{partner}"
            + (f"  ! {notes}" if notes else "")
        )
    return printable_lines(lines)


def render_record(
    ks: Keystore,
    record: KeyRecord,
    at: _dt.datetime,
    as_json: bool,
    details: openpgp.Certificate | jose.JwkKey | None,
) -> bytes:
    data = _record(ks, record, at)
    if isinstance(details, openpgp.Certificate):
        data["subkeys"] = [
            {
                "fingerprint": info.fingerprint,
                "key_id": info.key_id,
                "bits": info.bits,
                "capabilities": info.capabilities,
            }
            for info in details.key_infos()
        ]
    elif details is not None:
        data["jwk"] = {
            "thumbprint": details.thumbprint,
            "bits": details.bits,
            "use": details.use,
            "alg": details.alg,
        }
    if as_json:
        return json_output(data)
    return _record_text(data)


def _record_text(data: dict[str, Any]) -> bytes:
    lines = [
        f"{data['key_id']}  {data['state']}",
        f"  env {data['env']}  format {data['format']}  owner {data['owner']}  "
        f"roles {','.join(data['roles'])}",
        f"  created {data['created']}  expires {data['expires']}  last used {data['last_used']}",
        "  history " + ", ".join(f"{t['state']} {t['at']}" for t in data["transitions"]),
    ]
    lines += _evidence_text(data)
    lines += [
        f"  subkey {s['key_id']} [{s['capabilities'].upper()}] {s['bits']}"
        for s in data.get("subkeys", [])
    ]
    if "jwk" in data:
        jwk = data["jwk"]
        lines.append(
            f"  jwk use {jwk['use']}  alg {jwk['alg'] or '-'}  {jwk['bits']} bits  "
            f"thumbprint {jwk['thumbprint']}"
        )
    if data["hsm"] is not None:
        lines += [f"  in HSM: {role} {data['hsm'][role]}" for role in ("sign", "decrypt")]
    lines += [f"  ! {w['message']}" for w in data["warnings"]]
    return printable_lines(lines)


def _evidence_text(data: dict[str, Any]) -> list[str]:
    """The partner state and, per role, uses and outcomes (canary ones in brackets)."""
    lines = [] if data["partner"] is None else [f"  partner {data['partner']}"]
    return lines + [
        f"  {role}: {e['sealed']} uses ({e['canary']} canary), accepted {e['accepted']} "
        f"({e['canary_accepted']} canary), rejected {e['rejected']} ({e['canary_rejected']} "
        f"canary), last {e['last'] or '-'}"
        for role, e in data["evidence"].items()
    ]


def render_audit(
    env: Environment, entries: tuple[AuditEntry, ...], head: str | None, as_json: bool
) -> bytes:
    """The audit log; with ``head`` (after ``--verify``), the hash its chain replayed to."""
    if as_json:
        payload: dict[str, Any] = {"env": env.value, "entries": [_entry(e) for e in entries]}
        if head is not None:
            payload["verified"] = True
            payload["head"] = head
        return json_output(payload)
    if head is not None:
        return f"audit ok: {len(entries)} entries, head {head}\n".encode()
    # Done at (wall clock), then judged at (the reference time, `--at`): both, always.
    lines = [
        f"{e.seq:>5}  {_iso(e.at)}  at {_iso(e.ref_at) or '-':<20}  "
        f"{e.actor:<12} {e.action:<14} {e.key_id}  "
        f"{e.from_state or '-'} -> {e.to_state or '-'}  v{e.version}"
        + (f"  ({e.reason})" if e.reason else "")
        for e in entries
    ]
    return printable_lines(lines)


def _iso(value: _dt.datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = from_unix(value)
    return value.isoformat().replace("+00:00", "Z")


def _warnings(ks: Keystore, record: KeyRecord, at: _dt.datetime) -> tuple[Finding, ...]:
    return key_warnings(record, at, expiry_warning=ks.expiry_warning, drain_window=ks.drain_window)


def _record(ks: Keystore, record: KeyRecord, at: _dt.datetime) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "env": record.env.value,
        "format": record.format.value,
        "owner": record.owner,
        "roles": sorted(r.value for r in record.roles),
        "label": record.label,
        "state": record.state.value,
        "created": _iso(record.created),
        "expires": _iso(record.expires),
        "transitions": [{"state": s.value, "at": _iso(t)} for s, t in record.transitions],
        "last_used": _iso(record.last_used),
        "has_secret": record.has_secret,
        "partner": None if record.partner is None else record.partner.value,
        "evidence": {
            role: {
                **dataclasses.asdict(evidence),
                **{
                    name: _iso(getattr(evidence, name))
                    for name in ("last", "last_accepted", "last_rejected")
                },
            }
            for role, evidence in sorted(record.evidence.items())
        },
        "hsm": _custody(record),
        "warnings": [{"code": f.code, "message": f.message} for f in _warnings(ks, record, at)],
    }


def _custody(record: KeyRecord) -> dict[str, str] | None:
    """An HSM key's token keys (pkcs11: URIs; the module, and where the PIN is read from)."""
    if record.custody is None:
        return None
    custody = hsm.Custody.from_text(record.custody)
    shown = {"sign": custody.sign, "decrypt": custody.decrypt}
    if custody.module_path is not None:
        shown["module_path"] = custody.module_path
    if custody.pin_source is not None:
        shown["pin_source"] = custody.pin_source
    return shown


def _entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": _iso(entry.at),
        "ref_at": _iso(entry.ref_at),
        "actor": entry.actor,
        "action": entry.action,
        "key_id": entry.key_id,
        "from": entry.from_state,
        "to": entry.to_state,
        "reason": entry.reason,
        "version": entry.version,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
