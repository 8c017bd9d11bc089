"""Model commands of the `moderation` CLI: train, evaluate, calibrate, score, score-file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from classifier import (
    ATTRIBUTES,
    ArtifactError,
    Corpus,
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
from classifier.fairness import BiasReport, identity_bias
from classifier.report import write_report
from classifier.thresholds import combined_hold, propose_thresholds

if TYPE_CHECKING:
    from service.review_calibration import AttributeProposal, ReviewScorer, ScoredReviews

__all__ = ["register"]

BAD_INPUT = 2
DEFAULT_DATA_DIR = "../shared/data"
DEFAULT_OUT = "classifier/default_model"
DEFAULT_TARGET_PRECISION = 0.8

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


def _labelled_corpus(path: Path) -> Corpus:
    """A labelled file to measure on, or a clear exit: nothing to measure is an error."""
    try:
        corpus = load_corpus(path)
    except DataError as exc:
        raise _fail(str(exc)) from exc
    if np.isnan(corpus.labels).all():
        raise _fail(f"{path.name} has no labelled rows")
    return corpus


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for i, header in enumerate(rows[0] if rows else ["(no rows)"]):
        table.add_column(str(header), justify="left" if i == 0 else "right")
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


def _service_thresholds() -> dict[str, float]:
    # Imported here: the settings pull in pydantic-settings, which only these commands need.
    from service.settings import get_settings

    return dict(get_settings().thresholds)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


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
        cells = [name, row["group"], _percent(row["fpr"])]
        if has_hold:
            cells.append(_percent(row["hold_rate"]))
        cells += [f"{row['neutral_max']:.3f}"]
        cells += [_fmt(row[k]) for k in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
        table.add_row(*cells)
    return table


def _print_bias(console: Console, model: ToxicityModel, threshold: float | None) -> None:
    """Identity-template bias table, the Jigsaw summary and the identities over the limit."""
    if threshold is None:
        hold = _service_thresholds()
        threshold = hold["toxic"]
    else:
        hold = dict.fromkeys(ATTRIBUTES, threshold)
    report = identity_bias(model, threshold=threshold, hold_thresholds=hold)
    console.print(_bias_table(report))
    summary = [{"summary": k, "value": v} for k, v in report.summary().items()]
    console.print(_table(f"bias summary — {model.version}", summary))
    over = report.over_limit()
    limit = f"{100 * report.max_fpr:g}%"
    if over:
        worst = ", ".join(
            f"{r['identity']} ({_percent(max(r['fpr'], r.get('hold_rate') or 0.0))})"
            for r in report.rows
            if r["identity"] in over
        )
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
        raise _fail("give --data FILE, --bias, or both")
    if report_dir is not None and data is None:
        raise _fail("--report needs --data FILE")
    corpus = _labelled_corpus(data) if data is not None else None
    model = _load(model_dir)
    console = Console()
    if corpus is not None and data is not None:
        proba = model.predict_proba(corpus.texts)
        metrics = attribute_metrics(corpus.labels, proba)
        console.print(_table(f"{data.name} — {model.version}", metrics))
        console.print(_threshold_grid(threshold_table(corpus.labels, proba)))
        if report_dir is not None:
            index = write_report(
                corpus.labels,
                proba,
                report_dir,
                title=f"{data.name} — {model.version}",
                thresholds=_service_thresholds(),
                notes=[f"{len(corpus)} comments from {data.name}; model {model.version}."],
            )
            console.print(f"wrote {index}")
    if bias:
        _print_bias(console, model, threshold)


def calibrate_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled CSV(.gz) with comment_text.")
    ] = None,
    target_recall: Annotated[
        float | None,
        typer.Option("--target-recall", help="Per attribute: highest threshold with recall >= R."),
    ] = None,
    max_hold_rate: Annotated[
        float | None,
        typer.Option("--max-hold-rate", help="Per attribute: lowest threshold holding <= H."),
    ] = None,
    model_dir: ModelOption = None,
    from_reviews: Annotated[
        bool,
        typer.Option(
            "--from-reviews",
            help="Learn from a site's moderator decisions (its labels) instead of a file.",
        ),
    ] = False,
    site: Annotated[
        str | None, typer.Option("--site", help="With --from-reviews: the site's name.")
    ] = None,
    target_precision: Annotated[
        float | None,
        typer.Option(
            "--target-precision",
            help="With --from-reviews: lowest threshold whose holds are >= P rejected "
            f"(default {DEFAULT_TARGET_PRECISION}).",
        ),
    ] = None,
) -> None:
    """Propose per-attribute hold thresholds: from a labelled file and a target recall or a
    maximum hold rate, or (--from-reviews) from a site's moderator decisions and a target
    precision of holds."""
    if from_reviews or site is not None or target_precision is not None:
        if not from_reviews:
            raise _fail("--site and --target-precision go with --from-reviews")
        if data is not None or target_recall is not None or max_hold_rate is not None:
            raise _fail(
                "--from-reviews takes --site and --target-precision, "
                "not --data, --target-recall or --max-hold-rate"
            )
        if site is None:
            raise _fail("--from-reviews needs --site NAME")
        precision = DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
        if not 0.0 < precision <= 1.0:
            raise _fail(f"--target-precision must be in (0, 1], got {precision}")
        _calibrate_from_reviews(site, target_precision=precision, model_dir=model_dir)
        return
    if data is None:
        raise _fail("give --data FILE (or --from-reviews --site NAME)")
    if (target_recall is None) == (max_hold_rate is None):
        raise _fail("give exactly one of --target-recall R and --max-hold-rate H")
    goal_name = "--target-recall" if target_recall is not None else "--max-hold-rate"
    goal = target_recall if target_recall is not None else max_hold_rate
    if goal is None or not 0.0 < goal <= 1.0:
        raise _fail(f"{goal_name} must be in (0, 1], got {goal}")
    corpus = _labelled_corpus(data)
    model = _load(model_dir)
    proba = model.predict_proba(corpus.texts)
    proposed = propose_thresholds(
        corpus.labels, proba, target_recall=target_recall, max_hold_rate=max_hold_rate
    )
    chosen = {k: v["threshold"] for k, v in proposed.items() if v["threshold"] is not None}
    if not chosen:
        raise _fail(f"no threshold meets {goal_name} {goal:g} on {data.name}")
    console = Console()
    rows = [
        {"attribute": k, **{c: v[c] for c in ("n", "positives", "rule", "threshold")}}
        | {c: v[c] for c in ("hold_rate", "recall", "precision")}
        for k, v in proposed.items()
    ]
    console.print(_table(f"proposed thresholds — {data.name} — {model.version}", rows))
    together = [{"thresholds": "proposed, together", **combined_hold(corpus.labels, proba, chosen)}]
    others = [a for a in ATTRIBUTES if a not in chosen]
    if others:
        current = {**_service_thresholds(), **chosen}
        together.append(
            {
                "thresholds": f"proposed + current for {', '.join(others)}",
                **combined_hold(corpus.labels, proba, current),
            }
        )
    console.print(_table("held when any attribute crosses", together))
    # Plain echo: rich would wrap or restyle a line meant to be pasted into a shell.
    typer.echo(f"MODERATION_THRESHOLDS='{json.dumps(chosen)}'")


REVIEW_BIAS_NOTE = (
    "A biased sample: precision and recall are measured on the comments moderators reviewed, "
    "and they review what was held (plus what a site audits of the rest). Toxic comments the "
    "model approved are mostly missing, so recall is overstated; below the current threshold "
    "precision rests on the few comments held for another attribute or audited, and below the "
    "lowest reviewed score it is not measured at all. Hold rates are measured on the site's "
    "latest traffic, rescored."
)


def _review_data(site: str, model_dir: Path | None) -> ScoredReviews:
    """The site's reviews and latest traffic, scored by the model, or a clear exit."""
    # Imported here: only this command needs the database.
    from sqlalchemy.exc import SQLAlchemyError

    from service.db import make_engine, make_session_factory, session_scope
    from service.errors import SiteNotFound, TooFewReviews
    from service.model_holder import ModelHolder
    from service.review_calibration import (
        read_site_reviews,
        require_enough_reviews,
        score_reviews,
    )
    from service.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    try:
        with session_scope(sessions) as session:
            reviews = read_site_reviews(session, site, default_thresholds=settings.thresholds)
        require_enough_reviews(reviews)
        if model_dir is not None:
            scorer: ReviewScorer = _load(model_dir)
        else:
            holder = ModelHolder(
                sessions,
                cache_dir=settings.var_dir / "models",
                bootstrap_dir=settings.model_dir,
                shadow=False,
            )
            scorer = holder.start(watch=False).scorer
    except (SiteNotFound, TooFewReviews) as exc:
        raise _fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0][:200]
        raise _fail(f"cannot read {settings.resolved_database_url}: {first}") from exc
    finally:
        engine.dispose()
    return score_reviews(reviews, scorer)


def _threshold(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _calibrate_from_reviews(site: str, *, target_precision: float, model_dir: Path | None) -> None:
    from service.review_calibration import propose_from_reviews, proposed_thresholds

    scored = _review_data(site, model_dir)
    console = Console()
    console.print(
        f"site {site!r}: {len(scored.reviews.labels)} labelled comments, scored with "
        f"{scored.version}; hold rates on its latest {len(scored.traffic_proba)} scored comments",
        highlight=False,
    )
    proposals = propose_from_reviews(scored, target_precision=target_precision)
    summary = Table(title=f"proposed thresholds — holds >= {target_precision:g} rejected")
    for header in ("attribute", "reviewed", "rejected", "current", "proposed"):
        summary.add_column(header, justify="left" if header == "attribute" else "right")
    for header in ("hold rate", "precision", "recall", "note"):
        summary.add_column(header, justify="left" if header == "note" else "right")
    for p in proposals:
        cells = [p.attribute, str(p.reviewed), str(p.rejected), _threshold(p.current)]
        if p.curve is None:
            summary.add_row(*cells, "—", "", "", "", "too few reviews")
        elif p.threshold is None:
            note = f"not reached (best {_percent(p.best_precision)})"
            summary.add_row(*cells, "—", "", "", "", note)
        else:
            rates = (p.at_proposal(k) for k in ("traffic_hold_rate", "precision", "recall"))
            summary.add_row(*cells, _threshold(p.threshold), *map(_percent, rates), p.flag)
    console.print(summary)
    for p in proposals:
        if p.curve is not None:
            console.print(_trade_off(p))
    console.print(REVIEW_BIAS_NOTE, highlight=False)
    chosen = proposed_thresholds(proposals)
    if not chosen:
        raise _fail(f"no threshold reaches precision {target_precision:g} on site {site!r}")
    # Plain echo, to paste: the body of PUT /v1/sites/{site}/policy (keep its other keys).
    typer.echo(f"site policy for {site}: {json.dumps({'thresholds': chosen})}")


def _trade_off(proposal: AttributeProposal) -> Table:
    """Threshold -> hold rate, precision, recall for one attribute, with the proposal marked."""
    from service.review_calibration import trade_off_rows

    table = Table(title=f"{proposal.attribute}: threshold trade-off (reviews: precision, recall)")
    for header in ("threshold", "hold rate", "precision", "recall", "reviewed held", ""):
        table.add_column(header, justify="right" if header else "left")
    for row in trade_off_rows(proposal):
        table.add_row(
            f"{row.threshold:.3f}",
            _percent(row.hold_rate),
            _percent(row.precision),
            _percent(row.recall),
            str(row.held),
            row.mark,
        )
    return table


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
    if out.exists() and out.resolve() == input_file.resolve():
        raise _fail("--out must not be the input file: it would be emptied before it is read")
    if out.is_dir() or not out.parent.is_dir():
        raise _fail(f"cannot write {out}: not a file in an existing directory")
    model = _load(model_dir)
    rows_written = 0
    # Write beside the target and rename at the end: a failure leaves no half-written file.
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open_text(input_file) as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            if text_column not in fields:
                raise _fail(f"no column {text_column!r} in {input_file.name} (columns: {fields})")
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
        raise _fail(f"cannot read {input_file.name}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if rows_written == 0:
        partial.unlink(missing_ok=True)
        raise _fail(f"{input_file.name} has no rows to score")
    partial.replace(out)
    Console(stderr=True).print(f"scored {rows_written} rows with {model.version} -> {out}")


def register(app: typer.Typer) -> None:
    """Add the model commands to `app` (the `moderation` CLI)."""
    app.command("train")(train_command)
    app.command("evaluate")(evaluate_command)
    app.command("calibrate")(calibrate_command)
    app.command("score")(score_command)
    app.command("score-file")(score_file_command)
