"""What the model commands share: the --model option, loading or exiting 2, tables of rows.

`service.cli.model` and `service.cli.calibrate` read a model and a labelled file the same way,
fail the same way (a red message on stderr, exit code 2) and print rows the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from classifier import (
    ArtifactError,
    Corpus,
    DataError,
    ToxicityModel,
    load_corpus,
    load_default_model,
    load_model,
)

__all__ = [
    "BAD_INPUT",
    "ModelOption",
    "fail",
    "fmt",
    "labelled_corpus",
    "load",
    "percent",
    "rows_table",
    "service_thresholds",
]

BAD_INPUT = 2

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Model artifact directory (default: the shipped model)."),
]


def fail(message: str) -> typer.Exit:
    """Print `message` as an error and return the exit to raise (code `BAD_INPUT`)."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=BAD_INPUT)


def load(model_dir: Path | None) -> ToxicityModel:
    """The model in `model_dir` (default: the shipped one), or a clear exit."""
    try:
        return load_default_model() if model_dir is None else load_model(model_dir)
    except ArtifactError as exc:
        raise fail(str(exc)) from exc


def labelled_corpus(path: Path) -> Corpus:
    """A labelled file to measure on, or a clear exit: nothing to measure is an error."""
    try:
        corpus = load_corpus(path)
    except DataError as exc:
        raise fail(str(exc)) from exc
    if np.isnan(corpus.labels).all():
        raise fail(f"{path.name} has no labelled rows")
    return corpus


def service_thresholds() -> dict[str, float]:
    """The hold thresholds the service runs with (its settings)."""
    # Imported here: the settings pull in pydantic-settings, which only these commands need.
    from service.core.settings import get_settings

    return dict(get_settings().thresholds)


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    """One column per key of the first row, the first left-aligned, the numbers to the right."""
    table = Table(title=title)
    for i, header in enumerate(rows[0] if rows else ["(no rows)"]):
        table.add_column(str(header), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) for v in row.values()))
    return table
