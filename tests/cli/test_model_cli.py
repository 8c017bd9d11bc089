"""The model commands of the CLI, against a tiny model saved to a temporary folder."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from classifier import ATTRIBUTES
from service.cli.model import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(name="moderation")
    register(app)
    return app


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def _write_csv(path: Path, header: list[str], *, rows: list[list[str]]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


LABELLED = [
    ["1", "you are a stupid idiot", "1", "", "0", "0", "1", "0"],
    ["2", "thanks for the helpful edit", "0", "", "0", "0", "0", "0"],
    ["3", "shut up you idiot", "1", "", "0", "0", "1", "0"],
    ["4", "nice map of the region", "0", "", "0", "0", "0", "0"],
]


def test_score_prints_scores_and_spans(
    app: typer.Typer, runner: CliRunner, model_dir: Path
) -> None:
    result = runner.invoke(app, ["score", "you are a stupid idiot", "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    for name in ATTRIBUTES:
        assert name in result.output
    assert "idiot" in result.output and "spans behind" in result.output


def test_score_with_a_broken_model_dir_exits_2(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["score", "hello", "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "manifest" in result.stderr


def test_evaluate_prints_aucs_and_threshold_table(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    data = _write_csv(tmp_path / "eval.csv.gz", ["id", "comment_text", *ATTRIBUTES], rows=LABELLED)
    result = runner.invoke(app, ["evaluate", "--data", str(data), "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output and "hold rate / recall" in result.output
    assert "severe_toxic" not in result.output.split("hold rate")[0]  # never labelled here


def test_evaluate_rejects_missing_file_and_unlabelled_file(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    missing = runner.invoke(app, ["evaluate", "--data", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "not found" in missing.stderr
    bare = _write_csv(tmp_path / "bare.csv", ["id", "comment_text"], rows=[["1", "hi"]])
    unlabelled = runner.invoke(app, ["evaluate", "--data", str(bare), "--model", str(model_dir)])
    assert unlabelled.exit_code == 2 and "label columns" in unlabelled.stderr
    textless = _write_csv(tmp_path / "textless.csv", ["id", "toxic"], rows=[["1", "0"]])
    no_text = runner.invoke(app, ["evaluate", "--data", str(textless)])
    assert no_text.exit_code == 2 and "comment_text" in no_text.stderr


def test_score_file_writes_ids_and_scores_in_input_order(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    source = _write_csv(
        tmp_path / "in.csv",
        ["id", "body"],
        rows=[[str(i), f"comment number {i} you idiot" * (i % 2)] for i in range(7)],
    )
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "score-file",
            str(source),
            "--text-column",
            "body",
            "--out",
            str(out),
            "--model",
            str(model_dir),
            "--batch-size",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["id"] for r in rows] == [str(i) for i in range(7)]
    assert list(rows[0]) == ["id", *ATTRIBUTES]
    assert all(0.0 <= float(r["toxic"]) <= 1.0 for r in rows)


def test_score_file_without_id_column_and_with_unknown_column(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    source = _write_csv(tmp_path / "in.csv", ["body"], rows=[["hello"], ["you idiot"]])
    out = tmp_path / "out.csv"
    ok = runner.invoke(
        app,
        [
            "score-file",
            str(source),
            "--text-column",
            "body",
            "--out",
            str(out),
            "--model",
            str(model_dir),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert out.read_text().splitlines()[0] == ",".join(ATTRIBUTES)
    bad = runner.invoke(
        app,
        [
            "score-file",
            str(source),
            "--text-column",
            "text",
            "--out",
            str(out),
            "--model",
            str(model_dir),
        ],
    )
    assert bad.exit_code == 2 and "no column 'text'" in bad.stderr


def test_train_with_missing_data_dir_exits_2(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["train", "--data-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    assert "data directory not found" in result.stderr


def test_evaluate_without_data_or_bias_exits_2(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["evaluate"])
    assert result.exit_code == 2 and "--bias" in result.stderr


def test_evaluate_bias_prints_identity_table_summary_and_offenders(
    app: typer.Typer, runner: CliRunner, model_dir: Path
) -> None:
    result = runner.invoke(
        app, ["evaluate", "--bias", "--model", str(model_dir)], env={"COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    for text in ("identity bias", "Muslim", "Ukrainian", "BPSN AUC", "final_bias_score"):
        assert text in result.output
    assert "toxic >= 0.2" in result.output  # the service's default threshold
    assert "false positives on neutral sentences" in result.output
    lenient = runner.invoke(
        app,
        ["evaluate", "--bias", "--threshold", "1.0", "--model", str(model_dir)],
        env={"COLUMNS": "160"},
    )
    assert lenient.exit_code == 0, lenient.output
    assert "no identity exceeds 5%" in lenient.output


def test_evaluate_report_writes_html_and_plots_and_keeps_the_tables(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    data = _write_csv(tmp_path / "eval.csv", ["id", "comment_text", *ATTRIBUTES], rows=LABELLED)
    out = tmp_path / "report"
    result = runner.invoke(
        app, ["evaluate", "--data", str(data), "--model", str(model_dir), "--report", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output and "hold rate / recall" in result.output
    assert (out / "index.html").stat().st_size > 0
    for stem in ("roc", "pr", "calibration", "histogram", "tradeoff"):
        assert (out / f"toxic_{stem}.png").stat().st_size > 0
    no_data = runner.invoke(app, ["evaluate", "--bias", "--report", str(out)])
    assert no_data.exit_code == 2 and "--report needs --data" in no_data.stderr


def test_calibrate_prints_thresholds_rates_and_a_settings_line(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    data = _write_csv(tmp_path / "eval.csv", ["id", "comment_text", *ATTRIBUTES], rows=LABELLED)
    # obscene, threat and identity_hate are labelled without positives: no recall target.
    for goal, attributes in (
        (["--target-recall", "1.0"], {"toxic", "insult"}),
        (["--max-hold-rate", "0.5"], {"toxic", "obscene", "threat", "insult", "identity_hate"}),
    ):
        result = runner.invoke(
            app,
            ["calibrate", "--data", str(data), *goal, "--model", str(model_dir)],
            env={"COLUMNS": "160"},
        )
        assert result.exit_code == 0, result.output
        assert "hold_rate" in result.output and "recall" in result.output
        assert "proposed, together" in result.output
        line = next(x for x in result.output.splitlines() if x.startswith("MODERATION_THRESHOLDS="))
        proposed = json.loads(line.split("=", 1)[1].strip("'"))
        assert set(proposed) == attributes
        assert all(0.0 <= v <= 1.0 for v in proposed.values())
    # Both toxic rows score far above both clean ones, so recall 1.0 holds exactly half.
    strict = runner.invoke(
        app, ["calibrate", "--data", str(data), "--target-recall", "1", "--model", str(model_dir)]
    )
    assert "0.5000" in strict.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of"),
        (["--target-recall", "0.9", "--max-hold-rate", "0.1"], "exactly one of"),
        (["--target-recall", "0"], "must be in (0, 1]"),
        (["--target-recall", "1.5"], "must be in (0, 1]"),
        (["--max-hold-rate", "-0.1"], "must be in (0, 1]"),
    ],
)
def test_calibrate_rejects_bad_goals_with_exit_2(
    app: typer.Typer,
    runner: CliRunner,
    model_dir: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    data = _write_csv(tmp_path / "eval.csv", ["id", "comment_text", *ATTRIBUTES], rows=LABELLED)
    result = runner.invoke(
        app, ["calibrate", "--data", str(data), *args, "--model", str(model_dir)]
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_calibrate_rejects_missing_and_unlabelled_files(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    missing = runner.invoke(
        app, ["calibrate", "--data", str(tmp_path / "nope.csv"), "--target-recall", "0.9"]
    )
    assert missing.exit_code == 2 and "not found" in missing.stderr
    bare = _write_csv(tmp_path / "bare.csv", ["id", "comment_text"], rows=[["1", "hi"]])
    unlabelled = runner.invoke(
        app, ["calibrate", "--data", str(bare), "--max-hold-rate", "0.1", "--model", str(model_dir)]
    )
    assert unlabelled.exit_code == 2 and "label columns" in unlabelled.stderr


def test_score_file_refuses_to_overwrite_its_input_or_write_nowhere(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    source = _write_csv(tmp_path / "in.csv", ["body"], rows=[["hello"], ["you idiot"]])
    before = source.read_text()
    same = runner.invoke(
        app, ["score-file", str(source), "--text-column", "body", "--out", str(source),
              "--model", str(model_dir)],
    )  # fmt: skip
    assert same.exit_code == 2
    assert "must not be the input file" in same.output
    assert source.read_text() == before
    nowhere = runner.invoke(
        app, ["score-file", str(source), "--text-column", "body",
              "--out", str(tmp_path / "missing" / "out.csv"), "--model", str(model_dir)],
    )  # fmt: skip
    assert nowhere.exit_code == 2


def test_score_file_of_a_header_only_or_undecodable_file_fails_cleanly(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    empty = _write_csv(tmp_path / "empty.csv", ["body"], rows=[])
    out = tmp_path / "out.csv"
    args = ["--text-column", "body", "--out", str(out), "--model", str(model_dir)]
    result = runner.invoke(app, ["score-file", str(empty), *args])
    assert result.exit_code == 2
    assert "no rows" in result.output
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"body\n\xff\xfe not utf-8\n")
    result = runner.invoke(app, ["score-file", str(broken), *args])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    assert not out.exists()


def test_evaluate_or_calibrate_on_a_file_without_labelled_rows_fails_cleanly(
    app: typer.Typer, runner: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    header_only = _write_csv(tmp_path / "empty.csv", ["id", "comment_text", "toxic"], rows=[])
    for command in (["evaluate"], ["calibrate", "--target-recall", "0.9"]):
        result = runner.invoke(
            app, [*command, "--data", str(header_only), "--model", str(model_dir)]
        )
        assert result.exit_code == 2, result.output
        assert "no labelled rows" in result.output
