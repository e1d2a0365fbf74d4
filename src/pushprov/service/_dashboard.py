"""GET /dashboard, a small read-only page: key inventory, a timeline of each key's states, the
warnings `keys check` would give, and live counters. Server-rendered HTML with inline SVG; no
scripts, no external assets (so a strict Content-Security-Policy holds). Every value is escaped
(HTML, and control and bidi characters: ``_h``).
A browser signs in with Basic auth, any user, the API key as password; the sign-in prompt (a
401) goes to a peer on loopback only (an operator through an SSH tunnel), everyone else unknown
gets the service's silent 404 from the transport's gate (``_callers``)."""

from __future__ import annotations

import datetime as _dt
import html
import re
from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from .._text import printable
from ..keys import KeyStatus, ServiceKeys
from ._answers import not_found
from ._callers import from_loopback
from ._context import Context

__all__ = ["counters_from_metrics", "dashboard_router", "render_dashboard"]

_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "img-src data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def dashboard_router(context: Context) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/dashboard",
        summary="Read-only dashboard: keys, their timeline, warnings, counters",
        response_class=Response,
        responses={
            401: {"description": "sign in (loopback only): Basic auth, the API key as password"},
            404: {"description": "unknown caller (empty body)"},
        },
    )
    async def dashboard(request: Request) -> Response:
        if context.callers.identify(request.scope) is None:
            if not from_loopback(request.scope):
                raise not_found()
            # A person in a browser on this host: ask for credentials.
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="pushprov"'})
        at = context.clock()
        page = render_dashboard(
            context.current_keys(at),
            counters_from_metrics(context.metrics.render().decode()),
            env=context.config.env,
            at=at,
        )
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    return router


def _h(text: str) -> str:
    """Escaped for HTML, with controls and bidi overrides shown, not obeyed (``printable``)."""
    return html.escape(printable(text))


_COLORS = {
    "pending": "#9aa5b1",
    "active": "#2f9e44",
    "retiring": "#f08c00",
    "retired": "#c92a2a",
    "destroyed": "#343a40",
}
_WIDTH, _ROW, _LABEL = 960, 28, 230
_SAMPLE = re.compile(r"^(pushprov_[a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$")


def counters_from_metrics(text: str) -> dict[str, float]:
    """Totals for the dashboard from the Prometheus exposition (so workers are summed)."""
    totals: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        if name == "pushprov_http_requests_total":
            status = re.search(r'status="(\d+)"', labels or "")
            key = f"HTTP {status.group(1)}" if status else "HTTP ?"
        elif name in ("pushprov_seals_total", "pushprov_open_failures_total",
                      "pushprov_overload_rejections_total"):  # fmt: skip
            key = name.removeprefix("pushprov_").removesuffix("_total").replace("_", " ")
        else:
            continue
        totals[key] = totals.get(key, 0.0) + float(value)
    return dict(sorted(totals.items()))


def _short(key_id: str) -> str:
    return key_id[-16:] if len(key_id) > 16 else key_id


def _timeline(keys: tuple[KeyStatus, ...], at: _dt.datetime) -> str:
    starts = [k.created or at for k in keys] or [at]
    ends = [k.expires or at for k in keys] + [at]
    first, last = min(starts), max(ends)
    span = max((last - first).total_seconds(), 1.0)

    def x(when: _dt.datetime) -> float:
        return _LABEL + (_WIDTH - _LABEL - 10) * (when - first).total_seconds() / span

    height = _ROW * len(keys) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
             f'role="img" aria-label="key timeline">']  # fmt: skip
    for row, key in enumerate(keys):
        parts += _key_line(key, 10 + row * _ROW, x, at)
    now_x = x(at)
    parts.append(
        f'<line x1="{now_x:.1f}" x2="{now_x:.1f}" y1="0" y2="{height - 20}" '
        'stroke="#1971c2" stroke-width="2"/>'
    )
    parts.append(f'<text x="{now_x + 3:.1f}" y="9" font-size="11" fill="#1971c2">now</text>')
    parts.append(f'<text x="{_LABEL}" y="{height - 6}" font-size="11">{first:%Y-%m-%d}</text>')
    parts.append(f'<text x="{_WIDTH - 80}" y="{height - 6}" font-size="11">{last:%Y-%m-%d}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _key_line(
    key: KeyStatus, y: int, x: Callable[[_dt.datetime], float], at: _dt.datetime
) -> list[str]:
    """One key's row of the timeline: its label, a bar per state, a dashed line at expiry."""
    label = _h(f"{_short(key.id)} ({key.owner})")
    parts = [f'<text x="4" y="{y + 15}" font-size="12" font-family="monospace">{label}</text>']
    for state, since, until in _state_spans(key, at):
        left, right = x(since), x(until)
        color = _COLORS.get(state, "#868e96")
        parts.append(
            f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 2):.1f}" height="18" '
            f'fill="{color}"><title>{_h(state)} from {since:%Y-%m-%d %H:%M}'
            "</title></rect>"
        )
    if key.expires is not None:
        ex = x(key.expires)
        parts.append(
            f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{y}" y2="{y + 24}" stroke="#000" '
            'stroke-dasharray="2,2"/>'
        )
    return parts


def _state_spans(key: KeyStatus, at: _dt.datetime) -> list[tuple[str, _dt.datetime, _dt.datetime]]:
    """Each state the key was in, from when until when (the last one: to expiry, or now)."""
    changes = list(key.transitions) or [(key.state, key.created or at)]
    end_of_life = key.expires or at
    spans = []
    for index, (state, since) in enumerate(changes):
        until = changes[index + 1][1] if index + 1 < len(changes) else max(end_of_life, since)
        if state in ("retired", "destroyed") and index + 1 == len(changes):
            until = max(since, min(end_of_life, at))
        spans.append((state, since, until))
    return spans


def render_dashboard(
    keys: ServiceKeys, counters: dict[str, float], *, env: str, at: _dt.datetime
) -> str:
    rows = [_key_row(key, at) for key in keys.inventory]
    warnings = "".join(f"<li>{_h(text)}</li>" for text in keys.warnings) or (
        "<li class=ok>nothing needs attention</li>"
    )
    counter_rows = (
        "".join(
            f"<tr><td>{_h(name)}</td><td>{value:.0f}</td></tr>" for name, value in counters.items()
        )
        or "<tr><td colspan=2>no traffic yet</td></tr>"
    )
    legend = " ".join(f'<span class="state {state}">{state}</span>' for state in _COLORS)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pushprov · {_h(env)}</title>
<meta http-equiv="refresh" content="10">
<style>
body{{font-family:system-ui,sans-serif;margin:24px;color:#212529}}
table{{border-collapse:collapse;margin:8px 0 20px}}
td,th{{border:1px solid #dee2e6;padding:4px 8px;font-size:13px}}
th{{background:#f1f3f5;text-align:left}}.id{{font-family:monospace}}
.state{{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px}}
{"".join(f".state.{s}{{background:{c}}}" for s, c in _COLORS.items())}
.ok{{color:#2f9e44}}h2{{font-size:16px;margin-top:24px}}
</style></head><body>
<h1>pushprov — {_h(env)} keys</h1>
<p>Keyring version {_h(keys.version)} · {at:%Y-%m-%d %H:%M:%S} UTC · read-only</p>
<h2>Warnings</h2><ul id="warnings">{warnings}</ul>
<h2>Keys</h2>
<table id="keys"><tr><th>key</th><th>owner</th><th>roles</th><th>state</th><th>created</th>
<th>expires</th><th>days left</th><th>partner</th><th>sealed (canary)</th>
<th>accepted</th><th>rejected</th><th>last use</th></tr>{"".join(rows)}</table>
<h2>Timeline</h2><p>{legend}</p>{_timeline(keys.inventory, at)}
<h2>Counters</h2><table id="counters">{counter_rows}</table>
</body></html>
"""


def _key_row(key: KeyStatus, at: _dt.datetime) -> str:
    days = "" if key.expires is None else f"{(key.expires - at).total_seconds() / 86400:.1f}"
    return (
        "<tr>"
        f'<td class="id">{_h(key.id)}</td><td>{_h(key.owner)}</td>'
        f"<td>{_h(', '.join(key.roles))}</td>"
        f'<td><span class="state {_h(key.state)}">{_h(key.state)}</span></td>'
        f"<td>{_h(key.created.date().isoformat() if key.created else '')}</td>"
        f"<td>{_h(key.expires.date().isoformat() if key.expires else 'never')}</td>"
        f"<td>{days}</td>{_evidence_cells(key)}</tr>"
    )


def _evidence_cells(key: KeyStatus) -> str:
    """The partner state and, over every role, uses and outcomes (canary ones in brackets),
    and the last use: what the partner's outcomes say of the key."""
    roles = [evidence for _, evidence in key.evidence]
    sealed = sum(e.sealed for e in roles)
    canary = sum(e.canary for e in roles)
    accepted = sum(e.accepted for e in roles)
    canary_accepted = sum(e.canary_accepted for e in roles)
    rejected = sum(e.rejected for e in roles)
    canary_rejected = sum(e.canary_rejected for e in roles)
    last = max((e.last for e in roles if e.last is not None), default=None)
    when = "" if last is None else _dt.datetime.fromtimestamp(last, _dt.UTC).isoformat()
    return (
        f"<td>{_h(key.partner or '')}</td><td>{sealed} ({canary})</td>"
        f"<td>{accepted} ({canary_accepted})</td><td>{rejected} ({canary_rejected})</td>"
        f"<td>{_h(when)}</td>"
    )
