"""Model commands of the `moderation` CLI: train, evaluate, calibrate, score, score-file.

`calibrate` lives in `service.cli.calibrate`; what the commands share, in
`service.cli.common`.
"""

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
    DataError,
    ToxicityModel,
    attribute_metrics,
    save_model,
    threshold_table,
    train,
)
from classifier.data import open_text
from classifier.fairness import BiasReport
from classifier.report import write_report
from service.cli.calibrate import calibrate_command
from service.cli.common import (
    ModelOption,
    fail,
    fmt,
    labelled_corpus,
    load,
    percent,
    rows_table,
    service_thresholds,
)
from service.models.bias_check import bias_at, offenders, summary_rows

__all__ = ["register"]

DEFAULT_DATA_DIR = "../shared/data"
DEFAULT_OUT = "classifier/default_model"


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
        raise fail(f"data directory not found: {data_dir}")
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
        raise fail(str(exc)) from exc
    save_model(model, out)
    for title, rows in report["metrics"].items():
        console.print(rows_table(title, rows))
    console.print(_threshold_grid(report["threshold_table"]))
    console.print(f"trained in {report['training_seconds']:.1f} s; wrote {out} ({model.version_})")


def _bias_table(report: BiasReport) -> Table:
    over = set(report.over_limit())
    table = Table(
        title=f"identity bias — {report.attribute} >= {report.threshold:g} "
        f"({report.n_sentences} template sentences)"
    )
    has_hold = bool(report.rows) and "hold_rate" in report.rows[0]
    headers = ["identity", "group", "neutral FPR", *(["held (any)"] if has_hold else [])]
    headers += ["max neutral", "subgroup AUC", "BPSN AUC", "BNSP AUC"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("identity", "group") else "right")
    for row in report.rows:
        name = f"[bold red]{row['identity']} ![/]" if row["identity"] in over else row["identity"]
        cells = [name, row["group"], percent(row["fpr"])]
        if has_hold:
            cells.append(percent(row["hold_rate"]))
        cells += [f"{row['neutral_max']:.3f}"]
        cells += [fmt(row[k]) for k in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
        table.add_row(*cells)
    return table


def _print_bias(console: Console, model: ToxicityModel, threshold: float | None) -> None:
    """Identity-template bias table, the Jigsaw summary and the identities over the limit."""
    hold = service_thresholds() if threshold is None else dict.fromkeys(ATTRIBUTES, threshold)
    report = bias_at(model, hold)
    console.print(_bias_table(report))
    console.print(rows_table(f"bias summary — {model.version_}", summary_rows(report)))
    over = offenders(report)
    limit = f"{100 * report.max_fpr:g}%"
    if over:
        worst = ", ".join(f"{name} ({percent(rate)})" for name, rate in over)
        console.print(
            f"[bold red]{len(over)} of {len(report.rows)} identities exceed {limit} false "
            f"positives on neutral sentences:[/] {worst}",
            highlight=False,
        )
    else:
        console.print(f"[green]no identity exceeds {limit} false positives on neutral sentences")


def evaluate_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled CSV(.gz) with comment_text.")
    ] = None,
    model_dir: ModelOption = None,
    bias: Annotated[
        bool, typer.Option("--bias", help="Identity-term bias table (FPR, subgroup/BPSN/BNSP AUC).")
    ] = False,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="Hold threshold for --bias, for every attribute (default: the service's).",
        ),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option("--report", help="Write an HTML report with PNG plots to this folder."),
    ] = None,
) -> None:
    """Per-attribute ROC-AUC / PR-AUC and hold rate / recall by threshold on a labelled file;
    with --bias, the identity-term bias table; with --report, an HTML report."""
    if data is None and not bias:
        raise fail("give --data FILE, --bias, or both")
    if report_dir is not None and data is None:
        raise fail("--report needs --data FILE")
    corpus = labelled_corpus(data) if data is not None else None
    model = load(model_dir)
    console = Console()
    if corpus is not None and data is not None:
        proba = model.predict_proba(corpus.texts)
        metrics = attribute_metrics(corpus.labels, proba)
        console.print(rows_table(f"{data.name} — {model.version_}", metrics))
        console.print(_threshold_grid(threshold_table(corpus.labels, proba)))
        if report_dir is not None:
            index = write_report(
                corpus.labels,
                proba,
                report_dir,
                title=f"{data.name} — {model.version_}",
                thresholds=service_thresholds(),
                notes=[f"{len(corpus)} comments from {data.name}; model {model.version_}."],
            )
            console.print(f"wrote {index}")
    if bias:
        _print_bias(console, model, threshold)


def score_command(
    text: Annotated[str, typer.Argument(help="The comment to score.")],
    model_dir: ModelOption = None,
) -> None:
    """Print the six scores and the spans behind the highest-scoring attribute."""
    model = load(model_dir)
    scores = model.score(text)
    console = Console()
    rows = [{"attribute": k, "score": v} for k, v in scores.items()]
    console.print(rows_table(model.version_, rows))
    top = max(scores, key=scores.__getitem__)
    spans = model.explain(text, top)
    console.print(
        rows_table(
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
        raise fail(f"input file not found: {input_file}")
    if out.exists() and out.resolve() == input_file.resolve():
        raise fail("--out must not be the input file: it would be emptied before it is read")
    if out.is_dir() or not out.parent.is_dir():
        raise fail(f"cannot write {out}: not a file in an existing directory")
    model = load(model_dir)
    rows_written = 0
    # Write beside the target and rename at the end: a failure leaves no half-written file.
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open_text(input_file) as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if text_column not in fields:
                raise fail(f"no column {text_column!r} in {input_file.name} (columns: {fields})")
            id_fields = ["id"] if "id" in fields else []
            with open(partial, "w", encoding="utf-8", newline="") as sink:
                writer = csv.writer(sink)
                writer.writerow([*id_fields, *ATTRIBUTES])
                for batch in _batches(reader, batch_size):
                    proba = model.predict_proba([row[text_column] or "" for row in batch])
                    for row, scores in zip(batch, proba, strict=True):
                        ids = [row["id"]] if id_fields else []
                        writer.writerow([*ids, *(f"{p:.6f}" for p in scores)])
                    rows_written += len(batch)
    except (UnicodeDecodeError, OSError, csv.Error) as exc:
        partial.unlink(missing_ok=True)
        raise fail(f"cannot read {input_file.name}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if rows_written == 0:
        partial.unlink(missing_ok=True)
        raise fail(f"{input_file.name} has no rows to score")
    partial.replace(out)
    Console(stderr=True).print(f"scored {rows_written} rows with {model.version_} -> {out}")


def register(app: typer.Typer) -> None:
    """Add the model commands to `app` (the `moderation` CLI)."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("calibrate")(calibrate_command)
    app.command("score")(score_command)
    app.command("score-file")(score_file_command)
