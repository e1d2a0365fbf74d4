"""``pushprov keys ...``: the key lifecycle on the command line; ``--store`` for seal and open.

Secrets never travel on argv: the store passphrase comes from ``--store-passphrase-file`` or
``$PUSHPROV_STORE_PASSPHRASE``, key passphrases from ``--passphrase-file``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import getpass
import os
from typing import Any, BinaryIO

from .. import jose, openpgp
from .._clock import from_unix, now, parse_duration, parse_time
from .._errors import KeyUnusableError, UsageError
from .._policy import Policy
from ..hosting import PASSPHRASE_ENV, read_passphrase
from ..keys import (
    DEFAULT_DRAIN_WINDOW,
    AttentionNeededError,
    Environment,
    Finding,
    Format,
    KeyRecord,
    Keystore,
    findings,
    key_id_of,
    key_warnings,
)
from ..store import AuditEntry, Backend, default_store_path, open_backend
from ._io import first_line, json_output, read_capped

__all__ = [
    "KEYS_EPILOG",
    "add_keys_commands",
    "add_store_options",
    "run_keys_command",
    "store_keys_for_open",
    "store_keys_for_seal",
    "uses_store",
]

SigningKey = openpgp.SecretKey | jose.JwkKey
RecipientKey = openpgp.Certificate | jose.JwkKey
KEYS_EPILOG = f"""exit status (besides those of `pushprov --help`):
  20  key_not_found       21  transition_refused   22  self_test_failed
  23  still_draining      24  store_conflict       25  store_insecure
  26  store_corrupt       27  audit_tampered       28  store_unavailable
  30  attention_needed: `keys check` found something to act on (a role without an
      active key, a key expiring within 30 days or expired, a retiring key past its
      drain window); the findings are on stderr, per-key notes in `keys list --json`

states: pending -> active -> retiring -> retired -> destroyed; retiring -> active
(rollback); pending -> destroyed (discard). The store passphrase is read from
--store-passphrase-file, ${PASSPHRASE_ENV} or the store-passphrase file that
`pushprov init` makes beside the store; never from the command line.
"""


# ---------------------------------------------------------------------------------------------
# parser


def _add_store_location(parser: argparse.ArgumentParser, *, required_env: bool) -> None:
    parser.add_argument(
        "--store",
        metavar="PATH|URL",
        help="key store: a file (default for `keys`: $XDG_DATA_HOME/pushprov/keystore.db) or "
        "a postgresql:// URL (password via PGPASSWORD or ~/.pgpass, not on the command line)",
    )
    parser.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        required=required_env,
        help="environment every operation is scoped to (keys never cross environments)",
    )
    parser.add_argument(
        "--store-passphrase-file",
        metavar="FILE",
        help=f"file whose first line unlocks the store (else ${PASSPHRASE_ENV})",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store PATH --env ENV`` for seal/open, in place of key files."""
    _add_store_location(parser, required_env=False)


def add_keys_commands(subparsers: Any) -> None:
    """Register ``pushprov keys`` and its subcommands on the top-level subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    _add_store_location(common, required_env=True)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--at",
        metavar="TIME",
        type=parse_time,
        help="reference time for the operation (ISO 8601 or Unix seconds); default: now",
    )
    common.add_argument("--actor", help="who acts, for the audit log (default: login name)")
    common.add_argument(
        "--drain-window",
        type=parse_duration,
        default=DEFAULT_DRAIN_WINDOW,
        metavar="DURATION",
        help="how long a retiring key keeps being accepted before `retire --final` (default 7d)",
    )
    reason = argparse.ArgumentParser(add_help=False)
    reason.add_argument("--reason", default="", help="why, for the audit log")
    keys = subparsers.add_parser(
        "keys",
        help="key lifecycle: generate, import, promote, retire, destroy, check, audit",
        description="Manage keys in the key store: each change is checked, versioned and "
        "appended to a hash-chained audit log.",
        epilog=KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")

    def add(name: str, help_text: str, *, with_reason: bool = True) -> argparse.ArgumentParser:
        parents = [common, reason] if with_reason else [common]
        return commands.add_parser(  # type: ignore[no-any-return]
            name,
            help=help_text,
            parents=parents,
            epilog=KEYS_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    generate = add("generate", "generate one of our keys (pending)")
    generate.add_argument(
        "--format",
        choices=[f.value for f in Format],
        default=Format.PGP.value,
        help="OpenPGP key (default: signs and decrypts) or a JWK for the JWE envelope (one job, "
        "--use)",
    )
    generate.add_argument(
        "--uid", help="user ID, e.g. 'Issuer <ops@example>' (required for pgp; none for jwk)"
    )
    generate.add_argument("--bits", type=int, default=None, help="RSA size (default 3072)")
    generate.add_argument(
        "--expires", type=parse_duration, default=None, help="validity: 365d (default), 52w, 1y"
    )
    generate.add_argument(
        "--use", choices=["sig", "enc"], help="jwk: sig signs what we send, enc opens what we get"
    )
    generate.add_argument(
        "--alg", help="jwk: pin one algorithm, e.g. RSA1_5 for a legacy decryption key (enc)"
    )

    import_ = add(
        "import", "import a key (pending): a secret key is ours, a certificate a partner's"
    )
    import_.add_argument("file", metavar="FILE", help="key file ('-' for stdin)")
    import_.add_argument("--owner", help="'ours' or a partner name (default: ours for a secret "
                         "key, google for a certificate)")  # fmt: skip
    import_.add_argument(
        "--passphrase-file", metavar="FILE", help="unlocks a protected secret key being imported"
    )
    import_.add_argument(
        "--use",
        choices=["sig", "enc"],
        help='JWK/PEM: the key\'s one job, when the JWK does not say (its "use")',
    )
    import_.add_argument(
        "--expires",
        type=parse_duration,
        default=None,
        help='JWK/PEM without "exp" (a PEM key always): validity to record, e.g. 365d',
    )

    export = add("export", "print a key's certificate (or, with --secret, its protected secret)")
    export.add_argument("key", metavar="KEY", help="fingerprint or key ID")
    export.add_argument("--secret", action="store_true", help="export the secret key (audited)")
    export.add_argument(
        "--passphrase-file", metavar="FILE", help="passphrase protecting the exported secret"
    )

    add("list", "list keys with their states and warnings", with_reason=False)
    show = add("show", "show one key", with_reason=False)
    show.add_argument("key", metavar="KEY", help="fingerprint or key ID")

    promote = add("promote", "pending -> active, after a self-test")
    promote.add_argument("key", metavar="KEY")
    promote.add_argument(
        "--replace",
        metavar="KEY",
        action="append",
        default=[],
        help="active key that moves to retiring in the same step (repeatable)",
    )
    promote.add_argument(
        "--test-message", metavar="FILE", help="a partner's message to this key: must open"
    )

    retire = add("retire", "active -> retiring; with --final, retiring -> retired")
    retire.add_argument("key", metavar="KEY")
    retire.add_argument("--final", action="store_true", help="retiring -> retired (refused)")
    retire.add_argument(
        "--force", action="store_true", help="with --final and --reason: skip the drain window"
    )

    rollback = add("rollback", "retiring -> active")
    rollback.add_argument("key", metavar="KEY")
    rollback.add_argument("--replace", metavar="KEY", action="append", default=[])

    destroy = add("destroy", "retired (or pending) -> destroyed: erase the secret for good")
    destroy.add_argument("key", metavar="KEY")

    add("check", "exit 30 when something needs attention", with_reason=False)
    audit = add("audit", "print the audit log", with_reason=False)
    audit.add_argument("--verify", action="store_true", help="check the hash chain (exit 27)")


# ---------------------------------------------------------------------------------------------
# running


def run_keys_command(args: argparse.Namespace, stdin: BinaryIO) -> bytes:
    at: _dt.datetime = args.at or now()
    env = Environment(args.env)
    command: str = args.keys_command
    keystore = _open_keystore(args, create=command in ("generate", "import"))
    try:
        return _run(keystore, command, args, env, at, stdin)
    finally:
        keystore.close()


def _run(
    ks: Keystore,
    command: str,
    args: argparse.Namespace,
    env: Environment,
    at: _dt.datetime,
    stdin: BinaryIO,
) -> bytes:
    if command == "list":
        ring = ks.snapshot(env)
        return _render_list(ks, env, ring.version, ring.records, at, args.json)
    if command == "show":
        ring = ks.snapshot(env)
        record = ring.record(args.key)
        details = (
            ring.certificate(record) if record.format is Format.PGP else ring.public_jwk(record)
        )
        return _render_record(ks, record, at, args.json, details)
    if command == "check":
        return _check(ks, env, at, args.json)
    if command == "audit":
        return _audit(ks, env, args.verify, args.json)
    if command == "export":
        passphrase = first_line(args.passphrase_file) if args.passphrase_file else None
        if args.secret and passphrase is None:
            raise UsageError("--secret needs --passphrase-file to protect the exported key")
        if passphrase is not None and not args.secret:
            raise UsageError("--passphrase-file applies to --secret exports only")
        exported = ks.export(env, args.key, at=at, secret_passphrase=passphrase, reason=args.reason)
        return exported if exported.endswith(b"\n") else exported + b"\n"
    if command == "generate":
        record = ks.generate(
            env, user_id=args.uid, at=at, bits=args.bits, validity=args.expires,
            key_format=Format(args.format), use=args.use, alg=args.alg, reason=args.reason,
        )  # fmt: skip
    elif command == "import":
        data = read_capped(args.file, ks.policy.max_key_file_bytes, stdin)
        passphrase = first_line(args.passphrase_file) if args.passphrase_file else None
        record = ks.import_key(
            env, data, at=at, owner=args.owner, passphrase=passphrase, use=args.use,
            validity=args.expires, reason=args.reason,
        )  # fmt: skip
    elif command == "promote":
        test_message = (
            read_capped(args.test_message, ks.policy.max_key_file_bytes, stdin)
            if args.test_message
            else None
        )
        record = ks.promote(
            env, args.key, at=at, replacing=args.replace, test_message=test_message,
            reason=args.reason,
        )  # fmt: skip
    elif command == "retire":
        record = ks.retire(
            env, args.key, at=at, final=args.final, force=args.force, reason=args.reason
        )
    elif command == "rollback":
        record = ks.rollback(env, args.key, at=at, replacing=args.replace, reason=args.reason)
    else:
        record = ks.destroy(env, args.key, at=at, reason=args.reason)
    return _render_record(ks, record, at, args.json, None)


def _check(ks: Keystore, env: Environment, at: _dt.datetime, as_json: bool) -> bytes:
    # One snapshot: the version reported is the one whose records were checked.
    ring = ks.snapshot(env)
    found = findings(
        ring.records, at, expiry_warning=ks.expiry_warning, drain_window=ks.drain_window
    )
    if found:
        raise AttentionNeededError(
            f"{len(found)} finding(s) in {env.value}: " + "; ".join(f.message for f in found)
        )
    if as_json:
        return json_output({"env": env.value, "version": ring.version, "ok": True, "findings": []})
    return f"ok: {env.value} keyring version {ring.version}, nothing needs attention\n".encode()


def _audit(ks: Keystore, env: Environment, verify: bool, as_json: bool) -> bytes:
    head = ks.verify_audit(env) if verify else None
    entries = ks.audit_log(env)
    if as_json:
        payload: dict[str, Any] = {"env": env.value, "entries": [_entry(e) for e in entries]}
        if verify:
            payload["verified"] = True
            payload["head"] = head
        return json_output(payload)
    if verify:
        return f"audit ok: {len(entries)} entries, head {head}\n".encode()
    # Done at (wall clock), then judged at (the reference time, `--at`): both, always.
    lines = [
        f"{e.seq:>5}  {_iso(e.at)}  at {_iso(e.ref_at) or '-':<20}  "
        f"{e.actor:<12} {e.action:<14} {e.key_id}  "
        f"{e.from_state or '-'} -> {e.to_state or '-'}  v{e.version}"
        + (f"  ({e.reason})" if e.reason else "")
        for e in entries
    ]
    return ("\n".join(lines) + "\n").encode() if lines else b""


# ---------------------------------------------------------------------------------------------
# seal and open with --store


def uses_store(args: argparse.Namespace, *file_options: str) -> bool:
    """True for ``--store``; a usage error for both or neither of store and key files."""
    files = [getattr(args, name) for name in file_options]
    if args.store is not None:
        if any(files):
            raise UsageError("give either --store or key files, not both")
        if args.env is None:
            raise UsageError("--store needs --env sandbox|production")
        return True
    if not all(files):
        names = " and ".join("--" + name.replace("_", "-") for name in file_options)
        raise UsageError(f"{names} are required (or --store)")
    return False


def store_keys_for_seal(
    args: argparse.Namespace, at: _dt.datetime, policy: Policy, fmt: str
) -> tuple[list[SigningKey], list[RecipientKey]]:
    """OpenPGP: every active signing key of ours and every active partner key; JWE: the one
    active JWK of each. None expired."""
    env = Environment(args.env)
    ks = _open_keystore(args, create=False, policy=policy)
    try:
        ring = ks.snapshot(env)
        signers: list[SigningKey]
        recipients: list[RecipientKey]
        if fmt == "jwe":
            signer, recipient = ring.jwe_signing_key(at=at), ring.jwe_recipient(at=at)
            signers = [] if signer is None else [signer]
            recipients = [] if recipient is None else [recipient]
        else:
            signers, recipients = list(ring.signing_keys(at=at)), list(ring.recipients(at=at))
        if not signers or not recipients:
            raise KeyUnusableError(
                f"the {env.value} keyring has no usable active {fmt} "
                + ("signing key of ours" if not signers else "partner key to encrypt to")
            )
        ks.record_use(env, [key_id_of(k) for k in (*signers, *recipients)], at=at)
    finally:
        ks.close()
    return signers, recipients


def store_keys_for_open(
    args: argparse.Namespace, policy: Policy, fmt: str
) -> tuple[list[SigningKey], list[RecipientKey]]:
    """Every active or retiring key of ours, every active or retiring partner key, of the
    envelope's format."""
    env = Environment(args.env)
    ks = _open_keystore(args, create=False, policy=policy)
    try:
        ring = ks.snapshot(env)
        decryptors: list[SigningKey]
        verifiers: list[RecipientKey]
        if fmt == "jwe":
            decryptors = list(ring.jwe_decryption_keys())
            verifiers = list(ring.jwe_verification_keys())
        else:
            decryptors, verifiers = list(ring.decryption_keys()), list(ring.verification_certs())
    finally:
        ks.close()
    if not decryptors or not verifiers:
        raise KeyUnusableError(f"the {env.value} keyring has no active or retiring keys to open")
    return decryptors, verifiers


# ---------------------------------------------------------------------------------------------
# helpers


def _open_keystore(
    args: argparse.Namespace, *, create: bool, policy: Policy | None = None
) -> Keystore:
    backend = open_backend(args.store or default_store_path())
    store = backend.open_store(passphrase=_store_passphrase(args, backend), create=create)
    actor = getattr(args, "actor", None) or _login_name()
    drain = getattr(args, "drain_window", DEFAULT_DRAIN_WINDOW)
    if policy is None:
        return Keystore(store, actor=actor, drain_window=drain)
    return Keystore(store, actor=actor, policy=policy, drain_window=drain)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _store_passphrase(args: argparse.Namespace, backend: Backend) -> bytes:
    return read_passphrase(
        args.store_passphrase_file, backend, file_option="--store-passphrase-file"
    )


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
        "warnings": [{"code": f.code, "message": f.message} for f in _warnings(ks, record, at)],
    }


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


def _render_list(
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
        lines.append(
            f"{r.key_id}  {r.owner:<8} {r.state.value:<9} {','.join(sorted(r.roles)):<14} "
            f"created {r.created.date().isoformat()}  expires {expires}"
            + (f"  ! {notes}" if notes else "")
        )
    return ("\n".join(lines) + "\n").encode()


def _render_record(
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
    lines = [
        f"{data['key_id']}  {data['state']}",
        f"  env {data['env']}  format {data['format']}  owner {data['owner']}  "
        f"roles {','.join(data['roles'])}",
        f"  created {data['created']}  expires {data['expires']}  last used {data['last_used']}",
        "  history " + ", ".join(f"{t['state']} {t['at']}" for t in data["transitions"]),
    ]
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
    lines += [f"  ! {w['message']}" for w in data["warnings"]]
    return ("\n".join(lines) + "\n").encode()
