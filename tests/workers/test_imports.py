"""What a process that only scores loads: never scikit-learn (about 80 MB of each process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "modules",
    [
        "workers.app, workers.tasks, workers.training",  # every worker, and beat
        "service.app",  # the API
    ],
)
def test_the_scoring_processes_do_not_import_scikit_learn(modules: str) -> None:
    code = (
        f"import sys; import {modules}\n"
        "from service.models.scoring import load_scorer\n"
        "load_scorer(None).predict_proba(['you idiot'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]", found
