"""Model commands of the `moderation` CLI: train, evaluate, score, score-file."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from classifier import (
    ATTRIBUTES,
    ArtifactError,
    DataError,
    ToxicityModel,
    attribute_metrics,
    load_corpus,
    load_default_model,
    load_model,
    save_model,
    threshold_table,
    train,
)
from classifier.data import open_text

__all__ = ["register"]

BAD_INPUT = 2
DEFAULT_DATA_DIR = "../shared/data"
DEFAULT_OUT = "classifier/default_model"

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", help="Model artifact directory (default: the shipped model)."),
]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=BAD_INPUT)


def _load(model_dir: Path | None) -> ToxicityModel:
    try:
        return load_default_model() if model_dir is None else load_model(model_dir)
    except ArtifactError as exc:
        raise _fail(str(exc)) from exc


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for header in rows[0] if rows else ["(no rows)"]:
        table.add_column(str(header), justify="left" if header == "attribute" else "right")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    return table


def _threshold_grid(rows: list[dict[str, Any]]) -> Table:
    """One row per threshold, one column per attribute: "hold rate / recall" in percent."""
    thresholds = sorted({r["threshold"] for r in rows})
    names = list(dict.fromkeys(r["attribute"] for r in rows))
    cells = {(r["attribute"], r["threshold"]): r for r in rows}
    table = Table(title="hold rate / recall by threshold (%)")
    table.add_column("threshold", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for t in thresholds:
        table.add_row(f"{t:.1f}", *(_hold_recall(cells[name, t]) for name in names))
    return table


def _hold_recall(row: dict[str, Any]) -> str:
    recall = "—" if row["recall"] is None else f"{100 * row['recall']:.0f}"
    return f"{100 * row['hold_rate']:.1f}/{recall}"


def train_command(
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir",
            envvar="MODERATION_DATA_DIR",
            help="Folder of the shared CSV.gz corpora.",
        ),
    ] = Path(DEFAULT_DATA_DIR),
    out: Annotated[Path, typer.Option("--out", help="Artifact directory to write.")] = Path(
        DEFAULT_OUT
    ),
    seed: Annotated[int, typer.Option("--seed", help="random_state for splits and model.")] = 0,
) -> None:
    """Train the toxicity model, print its metrics and write the artifact + MODEL_CARD.md."""
    if not data_dir.is_dir():
        raise _fail(f"data directory not found: {data_dir}")
    console = Console()
    columns = (TextColumn("{task.description:<36}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("starting", total=1.0)
            model, report = train(
                data_dir,
                random_state=seed,
                progress=lambda stage, f: bar.update(task, description=stage, completed=f),
            )
    except DataError as exc:
        raise _fail(str(exc)) from exc
    save_model(model, out)
    for title, rows in report["metrics"].items():
        console.print(_table(title, rows))
    console.print(_threshold_grid(report["threshold_table"]))
    console.print(f"trained in {report['training_seconds']:.1f} s; wrote {out} ({model.version})")


def evaluate_command(
    data: Annotated[Path, typer.Option("--data", help="Labelled CSV(.gz) with comment_text.")],
    model_dir: ModelOption = None,
) -> None:
    """Per-attribute ROC-AUC / PR-AUC and hold rate / recall by threshold on a labelled file."""
    try:
        corpus = load_corpus(data)
    except DataError as exc:
        raise _fail(str(exc)) from exc
    model = _load(model_dir)
    proba = model.predict_proba(corpus.texts)
    console = Console()
    console.print(_table(f"{data.name} — {model.version}", attribute_metrics(corpus.labels, proba)))
    console.print(_threshold_grid(threshold_table(corpus.labels, proba)))


def score_command(
    text: Annotated[str, typer.Argument(help="The comment to score.")],
    model_dir: ModelOption = None,
) -> None:
    """Print the six scores and the spans behind the highest-scoring attribute."""
    model = _load(model_dir)
    scores = model.score(text)
    console = Console()
    console.print(_table(model.version, [{"attribute": k, "score": v} for k, v in scores.items()]))
    top = max(scores, key=scores.__getitem__)
    spans = model.explain(text, top)
    console.print(
        _table(
            f"spans behind {top}",
            [{"text": s.text, "start": s.start, "end": s.end, "weight": s.weight} for s in spans],
        )
    )


def _batches(reader: Iterator[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for row in reader:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_file_command(
    input_file: Annotated[Path, typer.Argument(help="Input CSV or CSV.gz.")],
    text_column: Annotated[str, typer.Option("--text-column", help="Column holding the text.")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV.")],
    model_dir: ModelOption = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 1000,
) -> None:
    """Score every row of a CSV; write its id (if any) and one column per attribute, in order."""
    if not input_file.is_file():
        raise _fail(f"input file not found: {input_file}")
    model = _load(model_dir)
    rows_written = 0
    with open_text(input_file) as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if text_column not in fields:
            raise _fail(f"no column {text_column!r} in {input_file.name} (columns: {fields})")
        id_fields = ["id"] if "id" in fields else []
        with open(out, "w", encoding="utf-8", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow([*id_fields, *ATTRIBUTES])
            for batch in _batches(reader, batch_size):
                proba = model.predict_proba([row[text_column] or "" for row in batch])
                for row, scores in zip(batch, proba, strict=True):
                    ids = [row["id"]] if id_fields else []
                    writer.writerow([*ids, *(f"{p:.6f}" for p in scores)])
                rows_written += len(batch)
    Console(stderr=True).print(f"scored {rows_written} rows with {model.version} -> {out}")


def register(app: typer.Typer) -> None:
    """Add the model commands to `app` (the `moderation` CLI)."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("score")(score_command)
    app.command("score-file")(score_file_command)
