"""Learning curve: a simulated site whose moderators' decisions retrain the model.

    python -m bench.learning_curve [--site forum|news|tweets] [--comments 5000] [--exam 2000]
        [--every 250] [--window 500] [--base full|light] [--label-weight 5] [--retrain api|local]
        [--keep-db]

The site's traffic is a labelled corpus the starting model never saw: the starting model is
trained on the base mix without it (`--base full`: every other corpus of TRAINING_MIX, the
shipped model's recipe; `--base light`: jigsaw_train alone, about a quarter faster). `forum`
(the default): Stormfront sentences labelled "hate" (an attack on a group), a site whose
moderators remove group attacks however politely put, which a model of rudeness misses;
`news`: Civil Comments news-site comments (`toxic_spans_train` + `civil_comments_sample_train`,
toxic sampled down to 25%), in time order (their ids grow with time); `tweets`: OLID, whose
"offensive" counts any profanity, so the site's moderators are stricter than the model.

The comments go through the real API (Redis, a Celery worker, SQLite). After each chunk a
simulated moderator reviews every held comment by its true label and audits a share of the
approved ones (imported as labels, as a site auditing its approvals would). Every `--every`
labels the model is retrained on the base mix plus the site's labels so far, each weighing
`--label-weight` base rows (5, as the service's retraining jobs) times its sampling weight
(service/models/labels.py), then registered and promoted; the worker swaps it in. `--retrain
api` asks the service instead (POST /v1/models/retrain, on a training worker of the stack),
with the site's corpora emptied from its base data; such a job also keeps its newest 20% of
labels out of training, and a candidate its promotion rule refuses is promoted by hand, so that
every retrain is measured.

Reported for each model: toxic ROC-AUC on the next `--window` comments it decided and on an
exam of `--exam` later comments of the site that are never streamed (every model scores the
same comments, so the models' differences are paired: the like-for-like comparison), the
moderators' workload (holds per 1,000 comments at a fixed recall of the toxic ones)
and what the default policy held. Printed, and written with a PNG plot to bench/out/. Never
asserted.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import signal
import sqlite3
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier import ATTRIBUTES, load_corpus, load_model, save_model
from classifier.training import TRAINING_MIX, Source, train
from service.cli.up import worker_command
from service.core.db import session_scope
from service.models.labels import import_labels, label_count, site_labels
from service.models.registry import fetch_artifact, promote, register_version
from service.models.retrain import SITE_FILE, write_labels
from service.sites.keys import get_or_create_site
from tests.stack import NO_QUOTA, Stack

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DATA_DIR = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class SiteSpec:
    """A simulated site: its corpora (file -> the column read as `toxic`) and default share."""

    corpora: dict[str, str]
    toxic_share: float | None  # None: the corpora's own


SITES: dict[str, SiteSpec] = {
    # A site stricter than the model about attacks on groups: Stormfront's "hate" sentences
    # are often polite, so the model of rudeness misses two in three at 0.2.
    "forum": SiteSpec({"stormfront_train": "hate"}, None),
    # News comments, closest to the sites this service is for.
    "news": SiteSpec({"toxic_spans_train": "toxic", "civil_comments_sample_train": "toxic"}, 0.25),
    # Tweets whose "offensive" label (any profanity counts) is a stricter standard than the
    # model's "toxic": a site whose moderators disagree with the model.
    "tweets": SiteSpec({"olid_train": "offensive"}, None),
}


def base_mix(site: str, base: str) -> dict[str, Source]:
    """The starting model's mix: `full` is TRAINING_MIX without the site's corpora."""
    if base == "light":
        return {"jigsaw_train": TRAINING_MIX["jigsaw_train"]}
    return {k: v for k, v in TRAINING_MIX.items() if k not in SITES[site].corpora}


CHUNK = 100  # comments posted between two passes of the moderator


@dataclass(frozen=True)
class SiteComment:
    external_id: str
    text: str
    toxic: int


@dataclass
class Decided:
    comment: SiteComment
    comment_id: str
    status: str
    toxic_score: float | None
    model_version: str


@dataclass
class Round:
    """One model of the simulation and how it did on the traffic it decided first."""

    version: str
    labels: int
    train_seconds: float
    decided: list[Decided] = field(default_factory=list)
    exam_auc: float | None = None


# --- the site's traffic -----------------------------------------------------------------------


def site_stream(
    data_dir: Path, site: str, *, n: int, toxic_share: float | None, seed: int
) -> list[SiteComment]:
    """`n` comments of the site's corpora, `toxic_share` of them toxic, in time order.

    The caller streams the first ones and keeps the last ones as the exam.

    Toxic Spans was pre-selected as probably toxic (70% toxic), so on the news site toxic rows
    are sampled down to a share closer to a moderated site's; its non-toxic rows are borderline
    comments, and the civil sample adds ordinary ones. Toxic Spans ids (Civil Comments ids)
    grow with time; other corpora carry no time, so their rows are spread at random.
    """
    rng = np.random.RandomState(seed)
    rows: list[tuple[float, SiteComment]] = []
    for name, column in SITES[site].corpora.items():
        corpus = load_corpus(
            data_dir / f"{name}.csv.gz", attributes=("toxic",), label_columns={"toxic": column}
        )
        numbers = (
            [int(i.removeprefix("ts_")) for i in corpus.ids] if name.startswith("toxic_") else []
        )
        low, high = (min(numbers), max(numbers)) if numbers else (0, 1)
        for i, (text, label) in enumerate(zip(corpus.texts, corpus.labels[:, 0], strict=True)):
            moment = (numbers[i] - low) / (high - low) if numbers else float(rng.uniform())
            if not math.isnan(label):
                comment = SiteComment(corpus.ids[i].replace("_", "-"), text, int(label))
                rows.append((moment, comment))
    share = SITES[site].toxic_share if toxic_share is None else toxic_share
    if share is None:
        picked = [rows[i] for i in rng.choice(len(rows), n, replace=False)]
    else:
        bad = [r for r in rows if r[1].toxic == 1]
        good = [r for r in rows if r[1].toxic == 0]
        n_bad = round(n * share)
        if n_bad > len(bad) or n - n_bad > len(good):
            raise SystemExit(f"not enough comments for {n} at {share:.0%} toxic")
        picked = [bad[i] for i in rng.choice(len(bad), n_bad, replace=False)]
        picked += [good[i] for i in rng.choice(len(good), n - n_bad, replace=False)]
    return [c for _, c in sorted(picked, key=lambda r: r[0])]


# --- models -----------------------------------------------------------------------------------


def train_model(
    data_dir: Path,
    mix: dict[str, Source],
    out: Path,
    *,
    params: dict[str, Any] | None,
    seed: int,
) -> tuple[Path, float]:
    started = time.perf_counter()
    model, _ = train(data_dir, mix=mix, params=params, random_state=seed)
    save_model(model, out)
    return out, time.perf_counter() - started


def starting_model(args: argparse.Namespace) -> tuple[Path, float]:
    """The site's first model: the base mix without the site's corpora (kept between runs)."""
    name = "light" if args.base == "light" else f"full-without-{args.site}"
    out = OUT / "learning_curve_models" / f"start-{name}-seed{args.seed}"
    if (out / "manifest.json").is_file():
        return out, 0.0
    print(f"training the starting model on the {args.base} base mix ...", flush=True)
    mix = base_mix(args.site, args.base)
    return train_model(args.data_dir, mix, out, params=None, seed=args.seed)


# A retrain step: the site's labels so far in the database -> a new active version.
Retrain = Callable[["Simulation", int], tuple[str, float]]


def retrain_locally(sim: Simulation, round_no: int) -> tuple[str, float]:
    """classifier.training.train on the base mix plus the site's labels; register and promote.

    The same recipe as a retraining job (service/models/retrain.py), minus its held-out slice of the
    labels and its promotion rule: here every candidate is promoted, to draw the curve.
    """
    args = sim.args
    with session_scope(sim.stack.sessions) as session:
        labels = site_labels(session, sim.site_id)
    work = sim.work / f"round-{round_no}"
    data = work / "data"
    data.mkdir(parents=True)
    for path in args.data_dir.glob("*.csv.gz"):  # linked, not copied; the mix picks its files
        (data / path.name).symlink_to(path.resolve())
    write_labels(data / f"{SITE_FILE}.csv.gz", labels.texts, labels.labels, labels.weight_array())
    site_source = Source(ATTRIBUTES, args.label_weight, row_weights=True)
    mix = {**base_mix(args.site, args.base), SITE_FILE: site_source}
    directory, seconds = train_model(data, mix, work / "model", params=None, seed=args.seed)
    with session_scope(sim.stack.sessions) as session:
        version = register_version(session, directory, created_by="bench").version
        promote(session, version, actor="bench", reason=f"learning curve round {round_no}")
    return version, seconds


def retrain_via_api(sim: Simulation, round_no: int) -> tuple[str, float]:
    """POST /v1/models/retrain, wait for the job, promote its candidate if the job did not."""
    started = time.perf_counter()
    with sim.stack.client("news-operator") as admin:
        job = admin.post("/v1/models/retrain", json={"site": "news"})
        job.raise_for_status()
        location = job.headers["Location"]
        while True:
            state = admin.get(location).json()
            if state["status"] in ("succeeded", "failed"):
                break
            time.sleep(2)
        if state["status"] != "succeeded" or not state.get("candidate_version"):
            raise RuntimeError(f"retraining job failed: {state}")
        version = state["candidate_version"]
        if state.get("promoted"):
            print(f"  the job promoted {version}", flush=True)
        else:  # the curve needs every candidate live; the job's rule said no, and why
            reasons = (state.get("result") or {}).get("reasons")
            print(f"  the job did not promote {version} ({reasons}); promoting it", flush=True)
            promoted = admin.post(f"/v1/models/{version}/promote", json={"reason": "bench"})
            promoted.raise_for_status()
    return version, time.perf_counter() - started


RETRAINERS: dict[str, Retrain] = {"local": retrain_locally, "api": retrain_via_api}


# --- the simulation ---------------------------------------------------------------------------


@dataclass
class Simulation:
    args: argparse.Namespace
    stack: Stack
    site_id: int
    work: Path
    rng: np.random.RandomState
    audited: int = 0
    reviewed: int = 0

    def post(self, comments: Sequence[SiteComment]) -> list[Decided]:
        def one(item: SiteComment) -> Decided:
            author = f"reader-{zlib.crc32(item.external_id.encode()) % 997}"
            payload = {"external_id": item.external_id, "article_id": "news",
                       "author_id": author, "text": item.text}  # fmt: skip
            with self.stack.client() as client:
                body = client.post("/v1/comments?wait_ms=5000", json=payload).json()
                while body.get("decision") is None:  # slow: the worker was swapping models
                    time.sleep(0.5)
                    body = client.get(f"/v1/comments/{body['id']}").json()
            decision = body["decision"]
            score = decision["scores"].get("toxic")
            return Decided(item, body["id"], body["status"], score, decision["model_version"])

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, comments))

    def moderate(self, decided: Sequence[Decided]) -> None:
        """Review every held comment by its true label; audit a share of the approved ones."""
        held = [d for d in decided if d.status == "held"]
        with self.stack.client("news-moderator") as moderator:
            for action, toxic in (("reject", 1), ("approve", 0)):
                ids = [d.comment_id for d in held if d.comment.toxic == toxic]
                if ids:
                    moderator.post("/v1/reviews", json={"ids": ids, "action": action})
        self.reviewed += len(held)
        approved = [d for d in decided if d.status == "approved"]
        audit = [d for d in approved if self.rng.uniform() < self.args.audit]
        if not audit:
            return
        path = self.work / "audit.csv"
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["comment_id", "comment_text", "toxic"])
            writer.writerows([d.comment_id, d.comment.text, d.comment.toxic] for d in audit)
        with session_scope(self.stack.sessions) as session:
            import_labels(session, self.site_id, path, actor="auditor")
        self.audited += len(audit)

    def labels(self) -> int:
        with session_scope(self.stack.sessions) as session:
            return label_count(session, self.site_id)

    def wait_for(self, version: str, *, timeout: float = 120) -> None:
        """Until the worker decides with `version` (it polls the registry every second)."""
        deadline = time.monotonic() + timeout
        with self.stack.client("other-submitter") as client:  # probes stay out of the stream
            for i in range(10**6):
                body = client.post(
                    "/v1/comments?wait_ms=5000",
                    json={"external_id": f"probe-{version}-{i}", "article_id": "probe",
                          "author_id": "probe", "text": "A probe of the model swap."},
                ).json()  # fmt: skip
                decision = body.get("decision") or {}
                if decision.get("model_version") == version:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the worker did not load {version} in {timeout} s")
                time.sleep(0.5)


def service_base_data(args: argparse.Namespace, target: Path) -> Path:
    """The service's base data without the site's corpora: empty files stand in for them.

    A retraining job trains on every corpus of TRAINING_MIX; one with no rows adds nothing, so
    the job trains on the same base as the starting model.
    """
    target.mkdir(parents=True)
    for path in args.data_dir.glob("*.csv.gz"):
        name = path.name.removesuffix(".csv.gz")
        if name in SITES[args.site].corpora:
            with gzip.open(target / path.name, "wt", encoding="utf-8", newline="") as handle:
                csv.writer(handle).writerow(["id", "comment_text", SITES[args.site].corpora[name]])
        else:
            (target / path.name).symlink_to(path.resolve())
    return target


def run(args: argparse.Namespace) -> list[Round]:
    comments = site_stream(
        args.data_dir,
        args.site,
        n=args.comments + args.exam,
        toxic_share=args.toxic_share,
        seed=args.seed,
    )
    stream, final = comments[: args.comments], comments[args.comments :]
    start_dir, start_seconds = starting_model(args)
    retrain = RETRAINERS[args.retrain]
    with tempfile.TemporaryDirectory(prefix="bench-learning-") as tmp:
        work = Path(tmp)
        env = {"MODERATION_MODEL_DIR": str(start_dir.resolve()), **NO_QUOTA}
        if args.retrain == "api":
            env["MODERATION_RETRAIN_LABEL_WEIGHT"] = str(args.label_weight)
            env["MODERATION_TRAINING_DATA_DIR"] = str(service_base_data(args, work / "base"))
        stack = Stack(work / "stack", f"sqlite:///{work / 'moderation.db'}", env).start()
        try:
            if args.retrain == "api":  # retraining jobs run on a worker of their own
                stack._spawn("training", worker_command(queue="training", loglevel="INFO"))
                stack._wait_for_log("training", "ready", timeout=120)
            with session_scope(stack.sessions) as session:
                site_id = get_or_create_site(session, "news").id
            sim = Simulation(args, stack, site_id, work, np.random.RandomState(args.seed))
            first = sim.post(stream[:1])  # loads the starting model; counts as traffic
            rounds = [Round(first[0].model_version, 0, start_seconds, list(first))]
            next_retrain = args.every
            position = 1
            while position < len(stream):
                chunk = stream[position : position + CHUNK]
                decided = sim.post(chunk)
                rounds[-1].decided.extend(decided)
                sim.moderate(decided)
                position += len(chunk)
                labels = sim.labels()
                print(
                    f"  {position:>6} comments, {labels:>5} labels "
                    f"({sim.reviewed} reviews, {sim.audited} audits), model {rounds[-1].version}",
                    flush=True,
                )
                # No retrain inside the last window: it is every model's common exam.
                if labels >= next_retrain and position < len(stream) - args.window:
                    print(f"retraining on {labels} labels ...", flush=True)
                    version, seconds = retrain(sim, len(rounds))
                    sim.wait_for(version)
                    rounds.append(Round(version, labels, seconds))
                    while next_retrain <= labels:
                        next_retrain += args.every
            exam(stack, rounds, final, work / "models")
        finally:
            stack.stop()
        if args.keep_db:  # e.g. to try `moderation calibrate --from-reviews` on the site
            kept = OUT / f"learning_curve-{args.site}.db"
            kept.unlink(missing_ok=True)
            source, copy = sqlite3.connect(work / "moderation.db"), sqlite3.connect(kept)
            source.backup(copy)  # the write-ahead log included
            source.close()
            copy.close()
    return rounds


def exam(stack: Stack, rounds: Sequence[Round], final: Sequence[SiteComment], cache: Path) -> None:
    """Score the exam with every model of the run, for a like-for-like AUC.

    The windows after each retrain are different slices of traffic; the exam's comments come
    after the stream and were never posted, so no model trained on them.
    """
    toxic = np.asarray([c.toxic for c in final])
    for r in rounds:
        with session_scope(stack.sessions) as session:
            fetched = fetch_artifact(session, r.version, cache)
        model = load_model(fetched.directory, expected_sha256=fetched.sha256)
        scores = model.predict_proba([c.text for c in final])[:, ATTRIBUTES.index("toxic")]
        r.exam_auc = float(roc_auc_score(toxic, scores))


# --- figures ----------------------------------------------------------------------------------


def holds_at_recall(scores: np.ndarray, toxic: np.ndarray, recall: float) -> float | None:
    """Holds per 1,000 comments when the threshold is the highest that catches `recall`."""
    positives = np.sort(scores[toxic == 1])[::-1]
    if not len(positives):
        return None
    threshold = positives[math.ceil(recall * len(positives)) - 1]
    return float((scores >= threshold).mean() * 1000)


def figures(rounds: Sequence[Round], *, window: int, recall: float) -> list[dict[str, Any]]:
    rows = []
    for i, r in enumerate(rounds):
        seen = r.decided[:window]
        scored = [d for d in seen if d.toxic_score is not None]
        scores = np.asarray([d.toxic_score for d in scored], dtype=np.float64)
        toxic = np.asarray([d.comment.toxic for d in scored])
        both = len(set(toxic.tolist())) == 2
        held = np.asarray([d.status == "held" for d in seen])
        bad = np.asarray([d.comment.toxic == 1 for d in seen])
        rows.append(
            {
                "round": i,
                "labels": r.labels,
                "model": r.version,
                "train_s": round(r.train_seconds),
                "window": len(seen),
                "toxic": int(bad.sum()),
                "roc_auc": round(float(roc_auc_score(toxic, scores)), 4) if both else None,
                "roc_auc_exam": _round(r.exam_auc, 4),
                f"holds_per_1000_at_recall_{recall:g}": _round(
                    holds_at_recall(scores, toxic, recall)
                ),
                "policy_holds_per_1000": _round(float(held.mean() * 1000)) if len(seen) else None,
                "policy_recall": _round(float(held[bad].mean()), 3) if bad.any() else None,
                "policy_precision": _round(float(bad[held].mean()), 3) if held.any() else None,
            }
        )
    return rows


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def table(rows: Sequence[dict[str, Any]]) -> str:
    headers = list(rows[0])
    cells = [[("—" if row[h] is None else str(row[h])) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], path: Path, *, recall: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["labels"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(labels, [r["roc_auc"] for r in rows], marker="o", label="the next window")
    left.plot(labels, [r["roc_auc_exam"] for r in rows], marker="s", label="the exam")
    left.set(xlabel="site labels so far", ylabel="toxic ROC-AUC")
    right.plot(
        labels,
        [r[f"holds_per_1000_at_recall_{recall:g}"] for r in rows],
        marker="o",
        label=f"at recall {recall:g}",
    )
    right.plot(
        labels, [r["policy_holds_per_1000"] for r in rows], marker="s", label="default policy"
    )
    right.set(xlabel="site labels so far", ylabel="holds per 1,000 comments (next window)")
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=5000, help="comments streamed")
    parser.add_argument("--exam", type=int, default=2000, help="later comments, never streamed")
    parser.add_argument("--every", type=int, default=250, help="retrain every K new labels")
    parser.add_argument("--window", type=int, default=500, help="comments to measure each model")
    parser.add_argument("--site", choices=sorted(SITES), default="forum")
    parser.add_argument("--toxic-share", type=float, default=None, help="default: the site's")
    parser.add_argument("--audit", type=float, default=0.05, help="share of approvals audited")
    parser.add_argument("--base", choices=["full", "light"], default="full")
    parser.add_argument("--label-weight", type=float, default=5.0)
    parser.add_argument("--recall", type=float, default=0.8)
    parser.add_argument("--retrain", choices=sorted(RETRAINERS), default="api")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep-db", action="store_true", help="copy the SQLite database to bench/out/"
    )
    args = parser.parse_args()
    if args.retrain == "api" and args.base != "full":
        parser.error("--retrain api trains on the service's base data: use --base full")

    # Stopped from outside: still stop the stack's processes (the `finally` in run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    rounds = run(args)
    rows = figures(rounds, window=args.window, recall=args.recall)
    OUT.mkdir(parents=True, exist_ok=True)
    share = sum(c.toxic for r in rounds for d in r.decided for c in [d.comment]) / args.comments
    title = (
        f"{args.site} site, {args.comments} comments ({share:.0%} toxic; exam {args.exam}), "
        "retrain every "
        f"{args.every} labels (weight {args.label_weight:g}), base {args.base}, "
        f"audit {args.audit:.0%} of approvals, window {args.window}"
    )
    print(title)
    print(table(rows))
    name = f"learning_curve-{args.site}-{args.retrain}"
    plot(rows, OUT / f"{name}.png", recall=args.recall, title=title)
    (OUT / f"{name}.json").write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
    )
    print(f"wrote {OUT / name}.png and .json ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
