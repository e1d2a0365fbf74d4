"""``pushprov keys ...``: the key lifecycle on the command line, one handler per subcommand.

Secrets never travel on argv: the store passphrase comes from ``--store-passphrase-file`` or
``$PUSHPROV_STORE_PASSPHRASE``, key passphrases from ``--passphrase-file``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from collections.abc import Callable
from typing import BinaryIO

from .._clock import parse_duration, parse_reference_time
from .._errors import UsageError
from .._text import printable_lines
from ..keys import (
    DEFAULT_DRAIN_WINDOW,
    AttentionNeededError,
    Environment,
    Format,
    KeyRecord,
    Keystore,
    findings,
)
from ._io import first_line, json_output, read_capped
from ._keys_output import partner_use_lines, render_audit, render_list, render_record
from ._keystore import PASSPHRASE_ENV, add_store_location, open_keystore
from ._options import Handler, Subparsers

__all__ = ["KEYS_EPILOG", "register"]

KEYS_EPILOG = f"""exit status (besides those of `pushprov --help`):
  20  key_not_found       21  transition_refused   22  self_test_failed
  23  still_draining      24  store_conflict       25  store_insecure
  26  store_corrupt       27  audit_tampered       28  store_unavailable
  HSM keys: 14 token_unavailable, 15 token_key_not_found, 13 bad_passphrase (PIN),
      9 key_unusable (no CKA_SIGN/CKA_DECRYPT), 10 unsupported (export --secret)
  30  attention_needed: `keys check` found something to act on (a role without an
      active key, a key expiring within 30 days or expired, a retiring key past its
      drain window, a stopped canary); the findings are on stderr, per-key notes in
      `keys list --json`
  31  partner_unverified: `keys retire` of the last key of its role the partner has
      proven, while its successor is not verified with the partner (--force --reason)

states: pending -> active -> retiring -> retired -> destroyed; retiring -> active
(rollback); pending -> destroyed (discard). The store passphrase is read from
--store-passphrase-file, ${PASSPHRASE_ENV} or the store-passphrase file that
`pushprov init` makes beside the store; never from the command line.
"""

# What a subcommand does with the open key store: its arguments, the environment, the time and
# standard input (a key file may be '-').
_Action = Callable[[Keystore, argparse.Namespace, Environment, _dt.datetime, BinaryIO], bytes]
_AddSubcommand = Callable[..., argparse.ArgumentParser]


def register(commands: Subparsers) -> None:
    """Register ``pushprov keys`` and its subcommands on the top-level subparsers."""
    keys = commands.add_parser(
        "keys",
        help="key lifecycle: generate, import, promote, retire, destroy, check, audit",
        description="Manage keys in the key store: each change is checked, versioned and "
        "appended to a hash-chained audit log.",
        epilog=KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = keys.add_subparsers(dest="keys_command", required=True, metavar="SUBCOMMAND")
    common, reason = _common_options(), _reason_option()

    def add(
        name: str, help_text: str, action: _Action, *, with_reason: bool = True
    ) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subcommands.add_parser(
            name,
            help=help_text,
            parents=[common, reason] if with_reason else [common],
            epilog=KEYS_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # Only generate and import may make a new store: any other command on a path that
        # holds none is a mistake to report, not a store to create.
        parser.set_defaults(handler=_on_keystore(action, create=name in ("generate", "import")))
        return parser

    _add_generate(add)
    _add_import(add)
    _add_export(add)
    add("list", "list keys with their states and warnings", _list, with_reason=False)
    show = add("show", "show one key", _show, with_reason=False)
    show.add_argument("key", metavar="KEY", help="fingerprint or key ID")
    _add_transitions(add)
    add("check", "exit 30 when something needs attention", _check, with_reason=False)
    audit = add("audit", "print the audit log", _audit, with_reason=False)
    audit.add_argument("--verify", action="store_true", help="check the hash chain (exit 27)")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_store_location(common, required_env=True)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--at",
        metavar="TIME",
        type=parse_reference_time,
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
    return common


def _reason_option() -> argparse.ArgumentParser:
    reason = argparse.ArgumentParser(add_help=False)
    reason.add_argument("--reason", default="", help="why, for the audit log")
    return reason


def _add_generate(add: _AddSubcommand) -> None:
    generate = add("generate", "generate one of our keys (pending)", _generate)
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
    generate.add_argument(
        "--hsm",
        metavar="URI",
        help="pgp: make the key in a PKCS#11 token, e.g. 'pkcs11:token=issuer;object=gpay-2026"
        "?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pushprov/pin'; "
        "the PIN comes from pin-source= or $PUSHPROV_PKCS11_PIN_SOURCE (file:PATH or "
        "env:NAME), the module from module-path= or $PUSHPROV_PKCS11_MODULE; never a PIN here",
    )


def _add_import(add: _AddSubcommand) -> None:
    import_ = add(
        "import",
        "import a key (pending): a secret key is ours, a certificate a partner's",
        _import,
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


def _add_export(add: _AddSubcommand) -> None:
    export = add(
        "export", "print a key's certificate (or, with --secret, its protected secret)", _export
    )
    export.add_argument("key", metavar="KEY", help="fingerprint or key ID")
    export.add_argument("--secret", action="store_true", help="export the secret key (audited)")
    export.add_argument(
        "--passphrase-file", metavar="FILE", help="passphrase protecting the exported secret"
    )


def _add_transitions(add: _AddSubcommand) -> None:
    promote = add("promote", "pending -> active, after a self-test", _promote)
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

    retire = add("retire", "active -> retiring; with --final, retiring -> retired", _retire)
    retire.add_argument("key", metavar="KEY")
    retire.add_argument("--final", action="store_true", help="retiring -> retired (refused)")
    retire.add_argument(
        "--force",
        action="store_true",
        help="with --reason: retire the last proven key before its successor is verified "
        "with the partner; with --final too: skip the drain window",
    )

    rollback = add("rollback", "retiring -> active", _rollback)
    rollback.add_argument("key", metavar="KEY")
    rollback.add_argument("--replace", metavar="KEY", action="append", default=[])

    destroy = add(
        "destroy", "retired (or pending) -> destroyed: erase the secret for good", _destroy
    )
    destroy.add_argument("key", metavar="KEY")


# ---------------------------------------------------------------------------------------------
# running


def _on_keystore(action: _Action, *, create: bool) -> Handler:
    """The handler that opens the key store, runs ``action`` on it and closes it."""

    def handler(args: argparse.Namespace, at: _dt.datetime, stdin: BinaryIO) -> bytes:
        env = Environment(args.env)
        keystore = open_keystore(args, create=create)
        try:
            return action(keystore, args, env, at, stdin)
        finally:
            keystore.close()

    return handler


def _list(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    ring = ks.snapshot(env)
    return render_list(ks, env, ring.version, ring.records, at, args.json)


def _show(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    ring = ks.snapshot(env)
    record = ring.record(args.key)
    details = ring.certificate(record) if record.format is Format.PGP else ring.public_jwk(record)
    return render_record(ks, record, at, args.json, details)


def _check(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    # One snapshot: the version reported is the one whose records were checked.
    ring = ks.snapshot(env)
    found = findings(
        ring.records, at, expiry_warning=ks.expiry_warning, drain_window=ks.drain_window
    )
    # When the partner last used each key it uses: nobody retires a key still in use.
    used = partner_use_lines(ring.records)
    seen = [f"{u['key_id']}: {u['seen']}: {u['partner_last'] or 'never'}" for u in used]
    if found:
        raise AttentionNeededError(
            f"{len(found)} finding(s) in {env.value}: "
            + "; ".join([*(f.message for f in found), *seen])
        )
    if args.json:
        return json_output({
            "env": env.value, "version": ring.version, "ok": True, "findings": [],
            "partner_use": used,
        })  # fmt: skip
    lines = [f"ok: {env.value} keyring version {ring.version}, nothing needs attention"]
    return printable_lines([*lines, *(f"  {line}" for line in seen)])


def _audit(
    ks: Keystore, args: argparse.Namespace, env: Environment, _at: _dt.datetime, _: BinaryIO
) -> bytes:
    head = ks.verify_audit(env) if args.verify else None
    return render_audit(env, ks.audit_log(env), head, args.json)


def _export(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    passphrase = first_line(args.passphrase_file) if args.passphrase_file else None
    if args.secret and passphrase is None:
        raise UsageError("--secret needs --passphrase-file to protect the exported key")
    if passphrase is not None and not args.secret:
        raise UsageError("--passphrase-file applies to --secret exports only")
    exported = ks.export(env, args.key, at=at, secret_passphrase=passphrase, reason=args.reason)
    return exported if exported.endswith(b"\n") else exported + b"\n"


def _generate(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    record = ks.generate(
        env, user_id=args.uid, at=at, bits=args.bits, validity=args.expires,
        key_format=Format(args.format), use=args.use, alg=args.alg, reason=args.reason,
        hsm_uri=args.hsm,
    )  # fmt: skip
    return _changed(ks, record, args, at)


def _import(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, stdin: BinaryIO
) -> bytes:
    data = read_capped(args.file, ks.policy.max_key_file_bytes, stdin)
    passphrase = first_line(args.passphrase_file) if args.passphrase_file else None
    record = ks.import_key(
        env, data, at=at, owner=args.owner, passphrase=passphrase, use=args.use,
        validity=args.expires, reason=args.reason,
    )  # fmt: skip
    return _changed(ks, record, args, at)


def _promote(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, stdin: BinaryIO
) -> bytes:
    test_message = (
        read_capped(args.test_message, ks.policy.max_key_file_bytes, stdin)
        if args.test_message
        else None
    )
    record = ks.promote(
        env, args.key, at=at, replacing=args.replace, test_message=test_message,
        reason=args.reason,
    )  # fmt: skip
    return _changed(ks, record, args, at)


def _retire(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    record = ks.retire(env, args.key, at=at, final=args.final, force=args.force, reason=args.reason)
    return _changed(ks, record, args, at)


def _rollback(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    record = ks.rollback(env, args.key, at=at, replacing=args.replace, reason=args.reason)
    return _changed(ks, record, args, at)


def _destroy(
    ks: Keystore, args: argparse.Namespace, env: Environment, at: _dt.datetime, _: BinaryIO
) -> bytes:
    record = ks.destroy(env, args.key, at=at, reason=args.reason)
    return _changed(ks, record, args, at)


def _changed(ks: Keystore, record: KeyRecord, args: argparse.Namespace, at: _dt.datetime) -> bytes:
    """A changed key as ``keys show`` prints it, without the certificate's details."""
    return render_record(ks, record, at, args.json, None)
