"""`moderation authors erase` and `moderation sites retention` on a real database file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.migrate import upgrade_database
from service.core.tables import Comment, Site
from service.sites.keys import get_or_create_site

MODERATION = str(Path(sys.executable).parent / "moderation")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MODERATION, *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_erases_an_author_and_sets_a_retention(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        body = CommentIn(external_id="c1", article_id="a", author_id="leaver", text="My words.")
        submit_comment(session, site_id, body, max_text_chars=1000)
    env = {**os.environ, "MODERATION_DATABASE_URL": url, "MODERATION_VAR_DIR": str(tmp_path)}

    erased = _run(env, "authors", "erase", "leaver", "--site", "news")
    assert erased.returncode == 0, erased.stderr
    assert "erased author 'leaver'" in erased.stdout and "1 comments" in erased.stdout
    with sessions() as session:
        assert session.scalar(select(Comment.text)) == ""

    again = _run(env, "authors", "erase", "leaver", "--site", "news")
    assert again.returncode == 2 and "no author with id 'leaver'" in again.stderr

    kept = _run(env, "sites", "retention", "news", "90")
    assert kept.returncode == 0 and "90 days" in kept.stdout
    refused = _run(env, "sites", "retention", "news", "40000")
    assert refused.returncode == 2 and "days must be" in refused.stderr
    with sessions() as session:
        assert session.scalar(select(Site.retention_days)) == 90
    engine.dispose()


def test_word_lists_go_in_and_out_as_text_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lists.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        get_or_create_site(session, "news")
    engine.dispose()
    env = {**os.environ, "MODERATION_DATABASE_URL": url, "MODERATION_VAR_DIR": str(tmp_path)}
    source = tmp_path / "banned.txt"
    source.write_text("# slurs we reject\nscumbag*\n\nshut   up  # a phrase\nSCUMBAG*\n")
    imported = _run(env, "lists", "import", "news", "banned", str(source))
    assert imported.returncode == 0, imported.stderr
    assert "2 banned entries" in imported.stdout
    exported = _run(env, "lists", "export", "news", "banned")
    assert exported.returncode == 0 and exported.stdout.splitlines() == ["scumbag*", "shut up"]

    (tmp_path / "bad.txt").write_text("fine\na*\n")
    refused = _run(env, "lists", "import", "news", "banned", str(tmp_path / "bad.txt"))
    assert refused.returncode == 2 and "entries[1]" in refused.stderr
    assert _run(env, "lists", "export", "news", "banned").stdout.splitlines() == [
        "scumbag*",
        "shut up",
    ], "a refused file changes nothing"
