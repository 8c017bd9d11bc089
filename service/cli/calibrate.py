"""The `moderation calibrate` command: propose hold thresholds from a file or from reviews.

The option checks, printing and exit codes live here; the computing in
`service.models.file_calibration` (`--data`) and `service.models.review_calibration`
(`--from-reviews`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.cli.common import (
    ModelOption,
    fail,
    labelled_corpus,
    load,
    percent,
    rows_table,
    service_thresholds,
)
from service.models.file_calibration import held_together, propose_from_file

if TYPE_CHECKING:
    from service.models.review_calibration import AttributeProposal, ReviewScorer, ScoredReviews

__all__ = ["DEFAULT_TARGET_PRECISION", "REVIEW_BIAS_NOTE", "calibrate_command"]

DEFAULT_TARGET_PRECISION = 0.8

REVIEW_BIAS_NOTE = (
    "A biased sample: precision and recall are measured on the comments moderators reviewed, "
    "and they review what was held (plus what a site audits of the rest). Toxic comments the "
    "model approved are mostly missing, so recall is overstated; below the current threshold "
    "precision rests on the few comments held for another attribute or audited, and below the "
    "lowest reviewed score it is not measured at all. Hold rates are measured on the site's "
    "latest traffic, rescored."
)


DataOption = Annotated[
    Path | None, typer.Option("--data", help="Labelled CSV(.gz) with comment_text.")
]
TargetRecallOption = Annotated[
    float | None,
    typer.Option("--target-recall", help="Per attribute: highest threshold with recall >= R."),
]
MaxHoldRateOption = Annotated[
    float | None,
    typer.Option("--max-hold-rate", help="Per attribute: lowest threshold holding <= H."),
]
FromReviewsOption = Annotated[
    bool,
    typer.Option(
        "--from-reviews",
        help="Learn from a site's moderator decisions (its labels) instead of a file.",
    ),
]
SiteOption = Annotated[
    str | None, typer.Option("--site", help="With --from-reviews: the site's name.")
]
TargetPrecisionOption = Annotated[
    float | None,
    typer.Option(
        "--target-precision",
        help="With --from-reviews: lowest threshold whose holds are >= P rejected "
        f"(default {DEFAULT_TARGET_PRECISION}).",
    ),
]


def calibrate_command(
    data: DataOption = None,
    target_recall: TargetRecallOption = None,
    max_hold_rate: MaxHoldRateOption = None,
    model_dir: ModelOption = None,
    from_reviews: FromReviewsOption = False,
    site: SiteOption = None,
    target_precision: TargetPrecisionOption = None,
) -> None:
    """Propose per-attribute hold thresholds: from a labelled file and a target recall or a
    maximum hold rate, or (--from-reviews) from a site's moderator decisions and a target
    precision of holds."""
    if from_reviews or site is not None or target_precision is not None:
        reviewed_site, precision = _review_options(
            from_reviews, site, target_precision, file_options=(data, target_recall, max_hold_rate)
        )
        _calibrate_from_reviews(reviewed_site, target_precision=precision, model_dir=model_dir)
        return
    if data is None:
        raise fail("give --data FILE (or --from-reviews --site NAME)")
    if (target_recall is None) == (max_hold_rate is None):
        raise fail("give exactly one of --target-recall R and --max-hold-rate H")
    goal_name = "--target-recall" if target_recall is not None else "--max-hold-rate"
    goal = target_recall if target_recall is not None else max_hold_rate
    if goal is None or not 0.0 < goal <= 1.0:
        raise fail(f"{goal_name} must be in (0, 1], got {goal}")
    _calibrate_from_file(
        data,
        target_recall=target_recall,
        max_hold_rate=max_hold_rate,
        goal=f"{goal_name} {goal:g}",
        model_dir=model_dir,
    )


def _review_options(
    from_reviews: bool,
    site: str | None,
    target_precision: float | None,
    *,
    file_options: tuple[object, ...],
) -> tuple[str, float]:
    """The site and target precision of --from-reviews, or exit 2 naming the wrong option."""
    if not from_reviews:
        raise fail("--site and --target-precision go with --from-reviews")
    if any(option is not None for option in file_options):
        raise fail(
            "--from-reviews takes --site and --target-precision, "
            "not --data, --target-recall or --max-hold-rate"
        )
    if site is None:
        raise fail("--from-reviews needs --site NAME")
    precision = DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
    if not 0.0 < precision <= 1.0:
        raise fail(f"--target-precision must be in (0, 1], got {precision}")
    return site, precision


def _calibrate_from_file(
    data: Path,
    *,
    target_recall: float | None,
    max_hold_rate: float | None,
    goal: str,
    model_dir: Path | None,
) -> None:
    corpus = labelled_corpus(data)
    model = load(model_dir)
    proba = model.predict_proba(corpus.texts)
    proposal = propose_from_file(
        corpus.labels, proba, target_recall=target_recall, max_hold_rate=max_hold_rate
    )
    if not proposal.chosen:
        raise fail(f"no threshold meets {goal} on {data.name}")
    console = Console()
    title = f"proposed thresholds — {data.name} — {model.version_}"
    console.print(rows_table(title, proposal.rows()))
    # The settings are read only when some attribute keeps its current threshold.
    current = service_thresholds() if proposal.unproposed else None
    together = held_together(corpus.labels, proba, proposal, current=current)
    console.print(rows_table("held when any attribute crosses", together))
    # Plain echo: rich would wrap or restyle a line meant to be pasted into a shell.
    typer.echo(f"MODERATION_THRESHOLDS='{json.dumps(proposal.chosen)}'")


def _review_data(site: str, model_dir: Path | None) -> ScoredReviews:
    """The site's reviews and latest traffic, scored by the model, or a clear exit."""
    # Imported here: only this command needs the database.
    from sqlalchemy.exc import SQLAlchemyError

    from service.core.db import make_engine, make_session_factory, session_scope
    from service.core.errors import SiteNotFound, TooFewReviews
    from service.core.settings import get_settings
    from service.models.holder import ModelHolder
    from service.models.review_calibration import (
        read_site_reviews,
        require_enough_reviews,
        score_reviews,
    )
    from service.models.scoring import ModelScorer

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    try:
        with session_scope(sessions) as session:
            reviews = read_site_reviews(session, site, default_thresholds=settings.thresholds)
        require_enough_reviews(reviews)
        if model_dir is not None:
            scorer: ReviewScorer = ModelScorer(load(model_dir))
        else:
            holder = ModelHolder(
                sessions,
                cache_dir=settings.var_dir / "models",
                bootstrap_dir=settings.model_dir,
                shadow=False,
            )
            scorer = holder.start(watch=False).scorer
    except (SiteNotFound, TooFewReviews) as exc:
        raise fail(str(exc)) from exc
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0][:200]
        raise fail(f"cannot read {settings.resolved_database_url}: {first}") from exc
    finally:
        engine.dispose()
    return score_reviews(reviews, scorer)


def _threshold(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _calibrate_from_reviews(site: str, *, target_precision: float, model_dir: Path | None) -> None:
    from service.models.review_calibration import propose_from_reviews, proposed_thresholds

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
            note = f"not reached (best {percent(p.best_precision)})"
            summary.add_row(*cells, "—", "", "", "", note)
        else:
            rates = (p.at_proposal(k) for k in ("traffic_hold_rate", "precision", "recall"))
            summary.add_row(*cells, _threshold(p.threshold), *map(percent, rates), p.flag)
    console.print(summary)
    for p in proposals:
        if p.curve is not None:
            console.print(_trade_off(p))
    console.print(REVIEW_BIAS_NOTE, highlight=False)
    chosen = proposed_thresholds(proposals)
    if not chosen:
        raise fail(f"no threshold reaches precision {target_precision:g} on site {site!r}")
    # Plain echo, to paste: the body of PUT /v1/sites/{site}/policy (keep its other keys).
    typer.echo(f"site policy for {site}: {json.dumps({'thresholds': chosen})}")


def _trade_off(proposal: AttributeProposal) -> Table:
    """Threshold -> hold rate, precision, recall for one attribute, with the proposal marked."""
    from service.models.review_calibration import trade_off_rows

    table = Table(title=f"{proposal.attribute}: threshold trade-off (reviews: precision, recall)")
    for header in ("threshold", "hold rate", "precision", "recall", "reviewed held", ""):
        table.add_column(header, justify="right" if header else "left")
    for row in trade_off_rows(proposal):
        table.add_row(
            f"{row.threshold:.3f}",
            percent(row.hold_rate),
            percent(row.precision),
            percent(row.recall),
            str(row.held),
            row.mark,
        )
    return table
