"""Templates and the helpers they use: highlighted spans, times, scores, audit summaries."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from classifier import ATTRIBUTES
from service.core.tables import ReviewAction, Role, utcnow
from service.rules.reasons import Reason
from service.web.chart import hourly_chart

__all__ = [
    "STATIC_DIR",
    "environment",
    "event_summary",
    "highlight",
    "static_version",
]

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
NONE = "\u2013"  # an en dash: no value


def highlight(text: str, reasons: list[dict[str, Any]]) -> Markup:
    """The comment with the words behind its scores marked; everything else escaped.

    Spans of several attributes may overlap, so they are merged into disjoint runs, each
    titled with every attribute that pointed at it. Offsets that do not fit the text (an
    edited comment, a bad decision row) are dropped rather than trusted.
    """
    marks: list[tuple[int, int, set[str]]] = []
    for reason in reasons:
        attribute = str(reason.get("attribute") or reason.get("code") or "")
        for span in reason.get("spans") or []:
            start, end = span.get("start"), span.get("end")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
                marks.append((start, end, {attribute}))
    marks.sort(key=lambda m: (m[0], m[1]))
    merged: list[tuple[int, int, set[str]]] = []
    for start, end, names in marks:
        if merged and start < merged[-1][1]:
            last_start, last_end, last_names = merged[-1]
            merged[-1] = (last_start, max(last_end, end), last_names | names)
        else:
            merged.append((start, end, set(names)))
    parts: list[str] = []
    position = 0
    for start, end, names in merged:
        parts.append(str(escape(text[position:start])))
        title = escape(", ".join(sorted(n for n in names if n)))
        parts.append(f'<mark title="{title}">{escape(text[start:end])}</mark>')
        position = end
    parts.append(str(escape(text[position:])))
    return Markup("".join(parts))


def _when(moment: datetime | str | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    # PostgreSQL hands back times in the connection's zone; the pages speak UTC throughout.
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _percent(value: float | None, digits: int = 0) -> str:
    return NONE if value is None else f"{value * 100:.{digits}f}%"


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _reason_label(reason: dict[str, Any]) -> str:
    code = reason.get("code", "")
    if code == Reason.ATTRIBUTE_OVER_THRESHOLD:
        return (
            f"{reason.get('attribute')} {_percent(reason.get('score'))} "
            f"≥ {_percent(reason.get('threshold'))}"
        )
    if code == Reason.UNSUPPORTED_LANGUAGE:
        return f"language {reason.get('language')} ({_percent(reason.get('confidence'))} sure)"
    extras = ", ".join(
        f"{k} {v}" for k, v in reason.items() if k not in ("code", "spans") and v is not None
    )
    return f"{code.replace('_', ' ')}{': ' + extras if extras else ''}"


def event_summary(event: dict[str, Any]) -> list[tuple[str, str]]:
    """An audit event's data as short label/value pairs for one table cell."""
    data = event.get("data") or {}
    if event.get("event") == "decided":
        reasons = [_reason_label(r) for r in data.get("reasons") or []]
        return [
            ("action", str(data.get("action"))),
            ("reasons", "; ".join(reasons) or NONE),
            ("model", str(data.get("model_version"))),
        ]
    pairs = []
    for key, value in data.items():
        if value is None or value == "" or isinstance(value, dict | list):
            continue
        pairs.append(
            (key.replace("_", " "), _when(value) if isinstance(value, datetime) else str(value))
        )
    return pairs


@lru_cache(maxsize=1)
def static_version() -> str:
    """A fingerprint of the static files, so browsers may cache them until they change."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=_when,
        iso=_iso,
        percent=_percent,
        reason_label=_reason_label,
        highlight=highlight,
        pretty_json=_pretty_json,
    )
    env.globals.update(
        ATTRIBUTES=ATTRIBUTES,
        ADMIN_ROLES=Role.ADMINS,
        REASON_CODES=Reason.FILTERABLE,
        REVIEW_REASONS=ReviewAction.REASONS,
        event_summary=event_summary,
        now=utcnow,
        hourly_chart=hourly_chart,
        static_version=static_version,
    )
    return env
