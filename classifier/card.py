"""Rendering the model card (a dict stored in the artifact) as Markdown."""

from __future__ import annotations

from typing import Any

__all__ = ["render_card"]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "—" if value is None else str(value)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(row.get(h)) for h in headers) + " |" for row in rows]
    return lines


def render_card(card: dict[str, Any], *, version: str, sha256: str) -> str:
    """Markdown for a model card: data, parameters, metrics, thresholds, provenance."""
    lines = [f"# Model card — {version}", "", f"- sha256: `{sha256}`"]
    for key in ("model", "command", "trained_at", "training_seconds", "random_state", "splits"):
        if key in card:
            lines.append(f"- {key.replace('_', ' ')}: `{card[key]}`")
    if card.get("libraries"):
        libs = ", ".join(f"{k} {v}" for k, v in card["libraries"].items())
        lines.append(f"- libraries: {libs}")
    sections = [
        ("Training data", "data"),
        ("Held-out evaluation", "metrics"),
        ("Thresholds", "threshold_rule"),
    ]
    for title, key in sections:
        value = card.get(key)
        if value is None:
            continue
        lines += ["", f"## {title}", ""]
        if key == "data":
            lines += _table(value)
        elif key == "metrics":
            for name, rows in value.items():
                lines += [f"### {name}", "", *_table(rows), ""]
        else:
            lines.append(str(value))
            rec = card.get("recommended_thresholds", {})
            lines += ["", *_table([{"attribute": k, "threshold": v} for k, v in rec.items()])]
    if card.get("experiments"):
        lines += ["", "## What was tried (toxic; see classifier/training.py EXPERIMENTS)", ""]
        lines += _table(card["experiments"])
    if card.get("params"):
        lines += ["", "## Parameters", ""]
        lines += [f"- {k}: `{v}`" for k, v in card["params"].items()]
    if card.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {note}" for note in card["notes"]]
    return "\n".join(lines).rstrip() + "\n"
