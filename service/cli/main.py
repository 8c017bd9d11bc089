"""The `moderation` command line: run the service, migrate, manage keys, train and score."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import redis
import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from service.cli.model import register as register_model_commands
from service.cli.models import cli_actor
from service.cli.models import register as register_registry_commands
from service.core.broker import redis_url
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.errors import ModerationError
from service.core.migrate import upgrade_database
from service.core.settings import Settings, get_settings
from service.sites.keys import KEYS_CHANGED, create_key, revoke_key

__all__ = ["app", "main"]

app = typer.Typer(name="moderation", help="Self-hosted comment moderation.", no_args_is_help=True)
keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
authors_app = typer.Typer(help="Readers: erase one's comments on request.", no_args_is_help=True)
app.add_typer(authors_app, name="authors")
sites_app = typer.Typer(help="Site settings kept on this machine's database.", no_args_is_help=True)
app.add_typer(sites_app, name="sites")
lists_app = typer.Typer(help="A site's banned and suspect word lists.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
register_model_commands(app)
register_registry_commands(app)
err = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


@app.command()
def up() -> None:
    """Start everything on this machine: Redis (embedded if none configured), DB, worker, API."""
    from service.cli.up import run_all

    raise typer.Exit(code=run_all(get_settings()))


@app.command()
def status() -> None:
    """What runs here (`moderation up`'s processes), the queues, pending comments, the active
    model, and the database and Redis in use; exit 1 when any of them is not right."""
    from service.cli.status import gather, show

    found = gather(get_settings())
    show(found, Console())
    raise typer.Exit(code=1 if found.problems else 0)


@app.command()
def migrate() -> None:
    """Bring the configured database to the newest schema."""
    settings = get_settings()
    upgrade_database(settings.resolved_database_url)
    typer.echo(f"database is at the newest schema: {settings.resolved_database_url}")


@app.command()
def api() -> None:
    """Run the HTTP API alone (uvicorn)."""
    from service.cli.up import api_command

    os.execv(sys.executable, api_command(get_settings()))


@app.command()
def worker(queue: str = "scoring") -> None:
    """Run one worker process: `scoring` (solo pool), `webhooks` (a thread pool) or `training`."""
    from service.cli.up import worker_command

    args = worker_command(queue=queue, loglevel=get_settings().log_level)
    os.execv(sys.executable, args)


@keys_app.command("create")
def keys_create(
    site: Annotated[str, typer.Option(help="Site name; created if new.")],
    role: Annotated[
        str, typer.Option(help="submitter | moderator | site_admin (one site) | operator (all)")
    ],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create a key and print it once; only its hash is stored."""
    settings = get_settings()
    upgrade_database(settings.resolved_database_url)
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    try:
        with session_scope(sessions) as session:
            key, plain = create_key(session, site_name=site, role=role, name=name)
            prefix = key.prefix
    except ModerationError as exc:
        raise _fail(exc.detail) from None
    typer.echo(plain)
    err.print(f"[dim]{role} key {prefix}… for site {site!r}; it is shown only this once[/dim]")


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key, or its first characters")],
) -> None:
    """Revoke a key at once."""
    settings = get_settings()
    sessions = make_session_factory(make_engine(settings.resolved_database_url))
    try:
        with session_scope(sessions) as session:
            revoke_key(session, prefix[:10])
    except ModerationError as exc:
        raise _fail(exc.detail) from None
    typer.echo(f"revoked {prefix[:10]}…")
    _announce_keys_changed(settings)


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    """The configured database's sessions; a domain error is the command's message (naming
    the field where there is one) and exit 2."""
    engine = make_engine(get_settings().resolved_database_url)
    try:
        yield make_session_factory(engine)
    except ModerationError as exc:
        raise _fail(f"{exc.field}: {exc.detail}" if exc.field else exc.detail) from None
    finally:
        engine.dispose()


@authors_app.command("erase")
def authors_erase(
    author_id: Annotated[str, typer.Argument(help="The author's id, as the site sends it")],
    site: Annotated[str, typer.Option(help="The site the author writes on")],
) -> None:
    """Erase every comment of an author: texts, metadata, labels and what quoted them."""
    from service.moderation.erasure import erase_author
    from service.sites.sites import get_site

    with _database() as sessions:
        with session_scope(sessions) as session:
            site_id = get_site(session, site).id
        done = erase_author(sessions, site_id, author_id, actor=cli_actor())
    counts = ", ".join(f"{n} {what}" for what, n in done["erased"].items())
    typer.echo(f"erased author {author_id!r} of site {site!r}: {counts}")


@sites_app.command("retention")
def sites_retention(
    site: Annotated[str, typer.Argument(help="Site name")],
    days: Annotated[int, typer.Argument(help="Keep comment text this many days; 0: always")],
) -> None:
    """Erase the site's comment text once it is older than DAYS (beat does it hourly)."""
    from service.moderation.erasure import set_retention

    with _database() as sessions, session_scope(sessions) as session:
        set_retention(session, site, days or None, actor=cli_actor())
    typer.echo(f"site {site!r} keeps comment text " + (f"{days} days" if days else "always"))


@lists_app.command("export")
def lists_export(
    site: Annotated[str, typer.Argument(help="Site name")],
    kind: Annotated[str, typer.Argument(help="banned | suspect")],
) -> None:
    """Print the list, one entry a line (what `lists import` reads)."""
    from service.rules.word_lists import get_list

    with _database() as sessions, session_scope(sessions) as session:
        entries = get_list(session, site, kind)["entries"]
    for entry in entries:  # type: ignore[attr-defined]
        typer.echo(entry)


@lists_app.command("import")
def lists_import(
    site: Annotated[str, typer.Argument(help="Site name")],
    kind: Annotated[str, typer.Argument(help="banned | suspect")],
    path: Annotated[typer.FileText, typer.Argument(help="One entry a line; # starts a comment")],
) -> None:
    """Replace the list with a text file's entries (blank lines and # comments skipped)."""
    from service.rules.word_lists import set_list

    lines = [line.split("#", 1)[0].strip() for line in path]
    entries = [line for line in lines if line]
    with _database() as sessions, session_scope(sessions) as session:
        kept = set_list(session, site, kind, entries, actor=cli_actor())["entries"]
    typer.echo(f"site {site!r}: {len(kept)} {kind} entries")  # type: ignore[arg-type]


def _announce_keys_changed(settings: Settings) -> None:
    """Make every running API process forget the keys it remembered, at once."""
    try:
        client = redis.Redis.from_url(redis_url(settings), socket_connect_timeout=2)
        with client:
            client.publish(KEYS_CHANGED, b"")
    except redis.RedisError as exc:
        err.print(
            f"[yellow]could not reach Redis ({exc}): an API running elsewhere stops accepting "
            "the key within 30 s[/yellow]"
        )


def main() -> None:
    app()
