"""`moderation calibrate --from-reviews`: thresholds from a site's moderator decisions, through the
CLI against a real SQLite database whose comments were decided by the shipped model."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from service.cli.model import register
from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.migrate import upgrade_database
from service.core.settings import DEFAULT_THRESHOLDS, get_settings
from service.models.scoring import load_scorer
from service.moderation.reviews import review_comment
from service.sites.keys import get_or_create_site
from tests.factories import CIVIL, TOXIC

# Low thresholds, so that civil comments are held too and moderators approve some.
LOW = dict.fromkeys(DEFAULT_THRESHOLDS, 0.01)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Site `news`: 50 comments decided at low thresholds, every held one reviewed by the truth;
    site `quiet`: three reviews only."""
    directory = tmp_path_factory.mktemp("calibrate")
    url = f"sqlite:///{directory / 'moderation.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    scorer = load_scorer(None)
    for site, texts in (("news", TOXIC + CIVIL), ("quiet", TOXIC[:2] + CIVIL[:1])):
        with session_scope(sessions) as session:
            row = get_or_create_site(session, site)
            row.policy = {"thresholds": LOW}
            site_id = row.id
            ids = [
                submit_comment(
                    session,
                    site_id,
                    CommentIn(external_id=f"c{i}", article_id="a", author_id="u", text=text),
                    max_text_chars=10_000,
                ).comment.id
                for i, text in enumerate(texts)
            ]
        with session_scope(sessions) as session:
            decided = decide_comments(session, ids, scorer, default_thresholds=DEFAULT_THRESHOLDS)
        toxic = set(ids[: len(TOXIC) if site == "news" else 2])
        with session_scope(sessions) as session:
            for d in decided:
                if d.status == "held":
                    action = "reject" if d.comment_id in toxic else "approve"
                    review_comment(
                        session, site_id, d.comment_id, key_id=1, actor="mod", action=action
                    )
    engine.dispose()
    return directory


@pytest.fixture
def cli(database: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("MODERATION_DATABASE_URL", f"sqlite:///{database / 'moderation.db'}")
    monkeypatch.setenv("MODERATION_VAR_DIR", str(database))
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(name="moderation")
    register(app)
    return app


def _scores(database: Path) -> tuple[np.ndarray, np.ndarray]:
    """The shipped model's toxic scores of the news site's rejected and approved comments."""
    from sqlalchemy import select

    from service.core.tables import Label

    engine = make_engine(f"sqlite:///{database / 'moderation.db'}")
    with make_session_factory(engine)() as session:
        labels = session.execute(select(Label.text, Label.labels).where(Label.site_id == 1)).all()
    engine.dispose()
    proba = load_scorer(None).predict_proba([t for t, _ in labels])[:, 0]
    bad = np.asarray([v["toxic"] == 1 for _, v in labels])
    return proba[bad], proba[~bad]


def test_proposes_the_lowest_threshold_whose_holds_reach_the_target_precision(
    app: typer.Typer, cli: CliRunner, database: Path
) -> None:
    result = cli.invoke(
        app, ["calibrate", "--from-reviews", "--site", "news", "--target-precision", "0.9"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "proposed thresholds" in out and "toxic: threshold trade-off" in out
    assert "hold rate" in out and "precision" in out and "recall" in out
    assert "biased sample" in " ".join(out.split()), "the output says what the sample is"
    line = re.search(r"site policy for news: (\{.*\})", out)
    assert line is not None, out
    toxic = json.loads(line.group(1))["thresholds"]["toxic"]
    rejected, approved = _scores(database)
    held_bad, held_good = (rejected >= toxic).sum(), (approved >= toxic).sum()
    assert held_bad / (held_bad + held_good) >= 0.9
    lower = round(toxic - 0.001, 3)
    below = (rejected >= lower).sum() / ((rejected >= lower).sum() + (approved >= lower).sum())
    assert below < 0.9 or lower < min(rejected.min(), approved.min()), "the lowest such threshold"


def test_an_unknown_site_or_too_few_reviews_exit_2_with_a_message(
    app: typer.Typer, cli: CliRunner
) -> None:
    unknown = cli.invoke(app, ["calibrate", "--from-reviews", "--site", "nope"])
    assert unknown.exit_code == 2
    assert "no site named 'nope'" in unknown.stderr
    few = cli.invoke(app, ["calibrate", "--from-reviews", "--site", "quiet"])
    assert few.exit_code == 2
    assert "too few reviews on site 'quiet'" in few.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-reviews"], "needs --site"),
        (["--site", "news"], "go with --from-reviews"),
        (["--from-reviews", "--site", "news", "--data", "x.csv"], "not --data"),
        (["--from-reviews", "--site", "news", "--target-recall", "0.9"], "not --data"),
        (["--from-reviews", "--site", "news", "--target-precision", "0"], "must be in (0, 1]"),
        (["--from-reviews", "--site", "news", "--target-precision", "1.5"], "must be in (0, 1]"),
        ([], "give --data FILE"),
    ],
)
def test_bad_combinations_of_options_exit_2(
    app: typer.Typer, cli: CliRunner, args: list[str], message: str
) -> None:
    result = cli.invoke(app, ["calibrate", *args])
    assert result.exit_code == 2
    assert message in result.stderr
