"""Benchmark hostile comments against ordinary ones of the same length: bounded work per comment.

    python -m bench.adversarial [--repeats 9] [--chars 10000] [--max-ratio 3]

Each hostile text fills the length limit with what makes normalisation, explanation or
language detection do the most work: runs of U+FDFA (NFKC: 18 characters each) and U+33D8
("p.m."), zero-width characters, one long word, nested tags, links, Latin/Cyrillic/Greek
look-alikes interleaved, and a few more found while bounding them. Each is measured two ways,
against real news comments from ../shared/data joined and cut to the same length:

- worker: `decide_comments`, the plain function the scoring task runs, one comment a call, on
  SQLite with the shipped model, under a policy that holds every attribute (thresholds 0), so
  every scored comment is also explained for all six: the most a comment can cost a worker;
- `/v1/score` with `explain`, through a real stack (uvicorn, the API process's model).

Prints the median over `--repeats` and its ratio to the ordinary comments' median, and exits
with status 1 when a ratio exceeds `--max-ratio`, so the bound can gate a change.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy.orm import Session, sessionmaker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compat import news_comments
from classifier import ATTRIBUTES, normalize_text
from classifier.normalize import CONFUSABLES
from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import make_engine, make_session_factory, session_scope
from service.core.migrate import upgrade_database
from service.models.scoring import ModelScorer, load_scorer
from service.sites.keys import get_or_create_site
from tests.stack import NO_QUOTA, Stack

ORDINARY = "ordinary news comments"
HOLD_EVERYTHING = dict.fromkeys(ATTRIBUTES, 0.0)
# Latin letters and a Cyrillic and a Greek look-alike of each, where both exist.
_LOOKS = {
    latin: [look for look, folded in CONFUSABLES.items() if folded == latin]
    for latin in set(CONFUSABLES.values())
}


def _fill(unit: str, chars: int) -> str:
    return (unit * (chars // len(unit) + 1))[:chars]


def _homoglyphs(text: str) -> str:
    """Every letter that has look-alikes swapped for one of them in turn, Latin kept between."""
    out = []
    for i, char in enumerate(text):
        looks = _LOOKS.get(char)
        out.append(looks[i % len(looks)] if looks and i % 3 else char)
    return "".join(out)


def _links(chars: int) -> str:
    links: list[str] = []
    while len(" ".join(links)) < chars - 50:
        links.append(f"https://news.example/2026/06/{len(links)}/story?ref=home")
    return " ".join(links)


def hostile_texts(ordinary: str, chars: int) -> dict[str, str]:
    """The hostile inputs, each `chars` long (some built from an ordinary comment)."""
    letters = "".join(c for c in ordinary.lower() if c.isalpha())
    return {
        "U+FDFA run (NFKC x18)": "\ufdfa" * chars,
        "U+33D8 run ('p.m.')": "\u33d8" * chars,
        "U+200B zero-width": "\u200b" * chars,
        "one long word": _fill(letters, chars),
        "nested <div>": _fill("<div>", chars),
        "many URLs": _links(chars),
        "mixed-script homoglyphs": _homoglyphs(ordinary),
        "U+00BD run (2 tokens each)": "\u00bd" * chars,
        "'a ' run (one-letter words)": _fill("a ", chars),
        "'x@' run (e-mail regex)": _fill("x@", chars),
        "&#65018; entities": _fill("&#65018;", chars),
    }


def _worker_sessions(directory: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{directory / 'worker.db'}"
    upgrade_database(url)
    return make_session_factory(make_engine(url))


def worker_ms(sessions: sessionmaker[Session], scorer: ModelScorer, text: str, tag: str) -> float:
    """Submit one comment, then time deciding it as the scoring task does (commit included)."""
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "bench").id
        payload = CommentIn(external_id=tag, article_id="a", author_id="reader", text=text)
        comment_id = submit_comment(session, site_id, payload, max_text_chars=len(text)).comment.id
    started = time.perf_counter()
    with session_scope(sessions) as session:
        decided = decide_comments(session, [comment_id], scorer, default_thresholds=HOLD_EVERYTHING)
    elapsed = (time.perf_counter() - started) * 1000
    if len(decided) != 1:
        raise RuntimeError(f"comment {tag} was not decided")
    return elapsed


def score_ms(client: httpx.Client, text: str) -> float:
    started = time.perf_counter()
    response = client.post("/v1/score", json={"texts": [text], "explain": True})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"/v1/score answered {response.status_code}: {response.text[:200]}")
    return elapsed


def measure(
    inputs: dict[str, list[str]], measure_one: Callable[[str, str], float], *, repeats: int
) -> dict[str, float]:
    """Median ms per input; repetitions interleave the inputs so that drift hits them alike."""
    for name, texts in inputs.items():
        measure_one(texts[0], f"warm-{name}")  # first use: detector, caches, connections
    times: dict[str, list[float]] = {name: [] for name in inputs}
    for rep in range(repeats):
        for name, texts in inputs.items():
            times[name].append(measure_one(texts[rep % len(texts)], f"{rep}-{name}"))
    return {name: statistics.median(values) for name, values in times.items()}


def _print_table(
    inputs: dict[str, list[str]], results: dict[str, dict[str, float]], args: argparse.Namespace
) -> float:
    """Print the figures; return the largest ratio to the ordinary comments."""
    print(f"\n{args.chars}-character comments, median of {args.repeats} runs (ms)")
    header = f"{'input':<30}{'normalised':>11}"
    for column in results:
        header += f"{column + ' ms':>16}{'x ordinary':>11}"
    print(header)
    worst = 0.0
    for name, texts in inputs.items():
        line = f"{name:<30}{len(normalize_text(texts[0])):>11}"
        for figures in results.values():
            ratio = figures[name] / figures[ORDINARY]
            worst = max(worst, ratio)
            line += f"{figures[name]:>16.1f}{ratio:>11.2f}"
        print(line)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--chars", type=int, default=10_000)
    parser.add_argument("--max-ratio", type=float, default=3.0)
    args = parser.parse_args()
    ordinary = news_comments(args.chars, limit=args.repeats)
    inputs = {ORDINARY: ordinary}
    inputs |= {name: [t] for name, t in hostile_texts(ordinary[0], args.chars).items()}
    scorer = load_scorer(None)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-adversarial-") as tmp:
        directory = Path(tmp)
        sessions = _worker_sessions(directory)
        results["worker"] = measure(
            inputs, lambda text, tag: worker_ms(sessions, scorer, text, tag), repeats=args.repeats
        )
        env = {**NO_QUOTA, "MODERATION_MAX_TEXT_CHARS": str(args.chars)}
        with Stack(directory, f"sqlite:///{directory / 'moderation.db'}", env) as stack:
            stack.start()
            headers = {"Authorization": f"Bearer {stack.keys['news-submitter']}"}
            with httpx.Client(base_url=stack.base_url, headers=headers, timeout=60) as client:
                results["/v1/score"] = measure(
                    inputs, lambda text, _: score_ms(client, text), repeats=args.repeats
                )
    worst = _print_table(inputs, results, args)
    verdict = "within" if worst <= args.max_ratio else "OVER"
    print(f"largest ratio {worst:.2f}: {verdict} the bound of {args.max_ratio:g}x")
    if worst > args.max_ratio:
        sys.exit(1)


if __name__ == "__main__":
    main()
