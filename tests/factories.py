"""What the tests build their cases from: comments (news ones, toxic and civil), payloads,
a tiny fitted model and its corpus, a stand-in scorer, corpora on disk, decided comments."""

from __future__ import annotations

import csv
import gzip
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from classifier import ATTRIBUTES, ToxicityModel
from classifier.training import TRAINING_MIX
from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.settings import DEFAULT_THRESHOLDS
from service.models.scoring import ModelScorer, load_scorer
from service.sites.keys import get_or_create_site

# -- news comments --

TOXIC = [
    "You are a complete idiot and everyone here knows it.",
    "Shut up, you stupid moron, nobody wants your garbage opinion.",
    "What a pathetic loser, go crawl back under your rock.",
    "This author is a brainless fool who should be fired.",
    "You're an ignorant piece of trash.",
    "Only a retarded imbecile would write something this dumb.",
    "Go to hell, you worthless scum.",
    "The minister is a disgusting pig and a liar.",
    "Fuck off and die, you pathetic idiot.",
    "You stupid bitch, learn to read before you comment.",
    "Anyone who believes this is a gullible moron.",
    "This is the dumbest crap I have ever read, you clown.",
    "Shut your stupid mouth, dumbass.",
    "What an absolute idiot. Pathetic.",
    "You are scum and your family should be ashamed of you.",
    "I will find you and beat you until you bleed.",
    "Stupid idiots like you are ruining this country.",
    "You're a fucking joke, get lost.",
    "Go kill yourself, nobody would miss you.",
    "The negotiators are spineless cowards and total idiots.",
    "Your comment is moronic and so are you.",
    "Eat shit, you ignorant fool.",
    "Such an asshole, honestly.",
    "You sound like a brain-dead troll, stupid.",
    "Hey idiot, nobody asked for your stupid opinion.",
]

CIVIL = [
    "Thank you for the thoughtful article about the peace talks.",
    "I hope both delegations can agree on a ceasefire soon.",
    "The timeline in the third paragraph was very helpful.",
    "Could you publish the full text of the proposed agreement?",
    "I disagree with the minister, but I appreciate the balanced reporting.",
    "My grandparents lived through the last war; I pray this one ends.",
    "Interesting analysis of the negotiating positions on both sides.",
    "Does anyone know when the next round of talks is scheduled?",
    "The map of the front line made the situation much clearer.",
    "I would like to read more about the humanitarian corridors.",
    "Good reporting, and a fair summary of a complicated week.",
    "The economic sanctions deserve a separate article.",
    "Well written and carefully sourced, thanks to the reporters.",
    "I think the mediators from Turkey played an important role.",
    "Let's hope the prisoner exchange goes ahead as planned.",
    "This is the clearest explanation of the talks I have read.",
    "The interview with the villagers was moving.",
    "Please correct the date in the caption; the meeting was on Tuesday.",
    "Both sides will have to compromise on the border question.",
    "I appreciate that the article includes voices from both countries.",
    "What happens to the grain exports if the talks fail?",
    "A lasting peace will need guarantees from other countries.",
    "The photographs of the delegates were striking.",
    "I learned a lot from this piece, thank you.",
    "Looking forward to the follow-up coverage next week.",
]


def comment(external_id: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "article_id": "peace-talks", "author_id": "reader-1",
            "text": text, **extra}  # fmt: skip


# -- a tiny fitted model --

NAN = np.nan
# Wikipedia-talk-like sentences for the tiny model (not the news comments above).
WIKI_CIVIL = [
    "thanks for the helpful edit on the article",
    "i agree with your point about the history section",
    "the sources in this paragraph look reliable to me",
    "could you add a citation for the population figure",
    "great work on the new map of the region",
    "please see the talk page before reverting",
    "the peace talks article needs a better summary",
    "welcome and thank you for your contributions",
    "i moved the paragraph to the economy section",
    "nice photo, the caption explains it well",
]
INSULTS = [
    "you are a stupid idiot",
    "shut up you idiot",
    "what an idiot you are",
    "only an idiot would write this",
    "you idiot, read the sources",
]
OBSCENE = ["this is crap and shit", "what the shit is this crap", "shit edit, total crap"]
THREATS = ["i will hurt you badly", "i am going to hurt you", "watch out or i will hurt you"]


def synthetic_corpus() -> tuple[list[str], np.ndarray]:
    """About 100 labelled sentences; `threat` is left unlabelled (NaN) on a third of them."""
    texts: list[str] = []
    rows: list[list[float]] = []
    suffixes = ["", " today", " again", " please", " here"]
    groups: list[tuple[list[str], list[float]]] = [
        (WIKI_CIVIL, [0, 0, 0, 0, 0, 0]),
        (INSULTS, [1, 0, 0, 0, 1, 0]),
        (OBSCENE, [1, 0, 1, 0, 0, 0]),
        (THREATS, [1, 1, 0, 1, 0, 0]),
    ]
    for group, row in groups:
        for suffix, text in itertools.product(suffixes, group):
            texts.append(text + suffix)
            rows.append(row)
    labels = np.asarray(rows, dtype=np.float64)
    labels[::3, ATTRIBUTES.index("threat")] = NAN
    return texts, labels


def tiny_model(random_state: int = 0) -> ToxicityModel:
    texts, labels = synthetic_corpus()
    model = ToxicityModel(
        word_max_features=2000,
        char_max_features=5000,
        min_count=1,
        C=10.0,
        calibration_fraction=0.25,
        n_jobs=1,
        random_state=random_state,
    )
    return model.fit(texts, labels)


# -- a stand-in scorer --

WORD_ATTRIBUTES = ("toxic", "insult")
THRESHOLDS = {"toxic": 0.5, "insult": 0.5}


@dataclass
class _Span:
    text: str
    start: int
    end: int
    weight: float


class WordModel:
    """Scores 0.9 when the text says 'idiot': enough to exercise deciding, not a classifier."""

    version = "word-model-1"
    attributes = WORD_ATTRIBUTES

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        return np.array([[0.9, 0.8] if "idiot" in t else [0.1, 0.05] for t in texts])

    def explain_many(
        self, text: str, attributes: Sequence[str], top_k: int = 5
    ) -> dict[str, list[Any]]:
        start = text.find("idiot")
        spans = [_Span("idiot", start, start + 5, 1.5)] if start >= 0 else []
        return {attribute: spans for attribute in attributes}


# -- corpora on disk and a site's labels (retraining) --

# Words the base corpus never saw: only the site's labels can teach them.
SITE_TOXIC = [
    "what a muppet",
    "absolute muppet of a columnist",
    "this clown again",
    "clown show from a muppet",
    "muppet brain strikes again",
    "typical clown behaviour",
]
SITE_CIVIL = [
    "thank you for the council vote coverage",
    "you covered the flood defences well",
    "you got the match report spot on",
    "i disagree with you on taxes",
    "thank you for covering the local elections",
    "did you see the bus timetable changed",
]
SUFFIXES = ["", " honestly", " again", " today", " as usual"]


def _write(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_base_corpus(root: Path, *, copies: int = 2, full_mix: bool = False) -> Path:
    """jigsaw_train (with natural-prevalence rows) and jigsaw_test from the synthetic corpus;
    with `full_mix`, every other corpus of classifier.training.TRAINING_MIX too (toxic only)."""
    root.mkdir(parents=True, exist_ok=True)
    texts, labels = synthetic_corpus()
    cells = [["" if np.isnan(v) else int(v) for v in row] for row in labels]
    train_rows = [
        [f"j{i}", text, *row, "1" if i % 2 else "0"]
        for i, (text, row) in enumerate(zip(texts * copies, cells * copies, strict=True))
    ]
    header = ["id", "comment_text", *ATTRIBUTES]
    _write(root / "jigsaw_train.csv.gz", [*header, "natural_sample"], train_rows)
    rows = [[f"t{i}", text, *row] for i, (text, row) in enumerate(zip(texts, cells, strict=True))]
    _write(root / "jigsaw_test.csv.gz", header, rows)
    if full_mix:
        toxic = [[row[0], row[1], row[2]] for row in rows]
        for name, source in TRAINING_MIX.items():
            if name != "jigsaw_train":
                column = source.columns.get("toxic", "toxic")  # OLID calls it "offensive"
                _write(root / f"{name}.csv.gz", ["id", "comment_text", column], toxic)
    return root


def site_texts(n: int) -> list[tuple[str, dict[str, int]]]:
    """n labels alternating toxic and civil, so that any recent slice holds both classes."""
    toxic = itertools.cycle(itertools.product(SUFFIXES, SITE_TOXIC))
    civil = itertools.cycle(itertools.product(SUFFIXES, SITE_CIVIL))
    out = []
    for i in range(n):
        suffix, text = next(toxic) if i % 2 else next(civil)
        values = {"toxic": 1, "insult": 1} if i % 2 else dict.fromkeys(ATTRIBUTES, 0)
        out.append((text + suffix, values))
    return out


# -- comments decided by the default model --


@cache
def default_scorer() -> ModelScorer:
    """The shipped model, loaded once for every test that decides with it."""
    return load_scorer(None)


def decide_texts(
    sessions: sessionmaker[Session],
    texts: list[str],
    *,
    site: str = "news",
    article: str = "a1",
    author: str = "reader",
    prefix: str = "c",
) -> tuple[int, list[str]]:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, site).id
        ids = [
            submit_comment(
                session,
                site_id,
                CommentIn(
                    external_id=f"{prefix}{i}", article_id=article, author_id=author, text=text
                ),
                max_text_chars=10_000,
            ).comment.id
            for i, text in enumerate(texts)
        ]
    with session_scope(sessions) as session:
        decide_comments(session, ids, default_scorer(), default_thresholds=DEFAULT_THRESHOLDS)
    return site_id, ids
