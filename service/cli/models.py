"""The `moderation` CLI's registry commands: retrain, labels import/export, models."""

from __future__ import annotations

import csv
import getpass
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, defer, sessionmaker

from classifier import ATTRIBUTES
from service.core.broker import enqueue_retrain, make_celery
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.errors import ModerationError
from service.core.migrate import upgrade_database
from service.core.settings import get_settings
from service.core.tables import ModelVersion, Site
from service.models.labels import export_labels, import_labels
from service.models.promotion import promote_checked
from service.models.registry import active_version, rollback, version_view
from service.models.training_jobs import get_job, request_retrain
from service.sites.sites import get_site

__all__ = ["cli_actor", "register"]

BAD_INPUT = 2
JOB_FAILED = 1
EXPORT_COLUMNS = ["id", "comment_id", "comment_text", *ATTRIBUTES, "source", "actor", "labelled_at"]

labels_app = typer.Typer(help="Import and export training labels.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, promote, roll back.", no_args_is_help=True)
err = Console(stderr=True)


def cli_actor() -> str:
    # Recorded with every label and alias move: who, from where, that it was the CLI.
    return f"cli {getpass.getuser()}@{socket.gethostname()}"


def _fail(message: str, code: int = BAD_INPUT) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=code)


@contextmanager
def _sessions() -> Iterator[sessionmaker[Session]]:
    settings = get_settings()
    upgrade_database(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        yield make_session_factory(engine)
    except ModerationError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()


def _site_id(session: Session, name: str | None) -> int:
    if name is not None:
        return get_site(session, name).id
    names = list(session.scalars(select(Site.name).order_by(Site.name)))
    if len(names) != 1:
        raise ModerationError(f"name a site with --site (sites: {', '.join(names) or 'none'})")
    return get_site(session, names[0]).id


SiteOption = Annotated[
    str | None, typer.Option("--site", help="Site name (default: the only one).")
]


def retrain_command(
    site: SiteOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job until it ends.")] = False,
) -> None:
    """Queue a retraining job for a site's labels (a training worker runs it)."""
    settings = get_settings()
    with _sessions() as sessions:
        with session_scope(sessions) as session:
            site_id = _site_id(session, site)
        app = make_celery(settings)
        job = request_retrain(
            sessions,
            site_id,
            actor=cli_actor(),
            enqueue=lambda job_id: enqueue_retrain(app, job_id),
            stale_seconds=settings.retrain_stale_seconds,
            queued_seconds=settings.retrain_queued_seconds,
        )
        typer.echo(f"training job {job['id']} queued for site {job['site']}")
        if wait:
            job = _follow(sessions, job["id"])
    if wait and job["status"] == "failed":
        raise _fail(f"training job {job['id']} failed: {job['error']}", JOB_FAILED)


def _follow(sessions: sessionmaker[Session], job_id: str) -> dict[str, Any]:
    shown, hinted, started = None, False, time.monotonic()
    while True:
        with session_scope(sessions) as session:
            job = get_job(session, job_id)
        line = f"{job['status']}: {job['stage']} ({job['percent']:.0f}%)"
        if line != shown:
            err.print(line, highlight=False)
            shown = line
        if job["status"] in ("succeeded", "failed"):
            break
        if job["status"] == "queued" and not hinted and time.monotonic() - started > 10:
            err.print(
                "still queued: is a training worker running? (`moderation worker --queue training`)"
            )
            hinted = True
        time.sleep(1.0)
    if job["status"] == "succeeded":
        outcome = (
            "promoted: it is the active model now"
            if job["promoted"]
            else ("waiting for an operator: " + "; ".join(job["result"].get("reasons", [])))
        )
        typer.echo(f"candidate {job['candidate_version']} {outcome}")
    return job


@labels_app.command("import")
def labels_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV(.gz): comment_text, attribute columns of 0/1, optional comment_id."
        ),
    ],
    site: Annotated[str, typer.Option("--site", help="The site the labels belong to.")],
) -> None:
    """Import labelled rows; the whole file is checked first and a bad line refuses it all."""
    with _sessions() as sessions, session_scope(sessions) as session:
        count = import_labels(session, get_site(session, site).id, file, actor=cli_actor())
    typer.echo(f"imported {count} label{'s' if count != 1 else ''} for site {site}")


@labels_app.command("export")
def labels_export(
    site: Annotated[str | None, typer.Option("--site", help="One site (default: all).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="CSV file (default: stdout).")] = None,
) -> None:
    """Export labels as CSV, oldest first."""
    with _sessions() as sessions, session_scope(sessions) as session:
        site_id = get_site(session, site).id if site else None
        handle: TextIO = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
        try:
            writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
            writer.writeheader()
            count = 0
            for row in export_labels(session, site_id):
                writer.writerow(row)
                count += 1
        finally:
            if out:
                handle.close()
    err.print(f"[dim]{count} label{'s' if count != 1 else ''} exported[/dim]")


@models_app.command("list")
def models_list() -> None:
    """Every registered version, newest first."""
    with _sessions() as sessions, session_scope(sessions) as session:
        active = active_version(session)
        rows = [
            version_view(r, active=active)
            for r in session.scalars(
                select(ModelVersion)
                .options(defer(ModelVersion.archive))
                .order_by(ModelVersion.created_at.desc())
            )
        ]
    table = Table(title="model versions")
    for column in ("version", "status", "parent", "created by", "created at"):
        table.add_column(column)
    for row in rows:
        status = row["status"] + (" (shadow)" if row["shadow"] else "")
        table.add_row(
            row["version"],
            status,
            row["parent"] or "",
            row["created_by"],
            row["created_at"].strftime("%Y-%m-%d %H:%M"),
        )
    Console(width=200).print(table)


@models_app.command("promote")
def models_promote(
    version: Annotated[str, typer.Argument(help="The version to make active.")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the model events.")],
) -> None:
    """Make a version the active model (every process follows within seconds)."""
    with _sessions() as sessions, session_scope(sessions) as session:
        moved = promote_checked(session, version, actor=cli_actor(), reason=reason)
    typer.echo(f"active: {moved['active']} (was {moved['previous']})")


@models_app.command("rollback")
def models_rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the model events.")],
) -> None:
    """Point the active alias back where its last move came from."""
    with _sessions() as sessions, session_scope(sessions) as session:
        moved = rollback(session, actor=cli_actor(), reason=reason)
    typer.echo(f"active: {moved['active']} (was {moved['previous']})")


def register(app: typer.Typer) -> None:
    """Add these commands to the `moderation` CLI."""
    app.command("retrain")(retrain_command)
    app.add_typer(labels_app, name="labels")
    app.add_typer(models_app, name="models")
