"""The language detector read from memory-mapped files: the packaged model's exact answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from py3langid.langid import MODEL_FILE, LanguageIdentifier

from service.rules import detector_files, language
from service.rules.detector_files import mapped_detector
from tests.factories import CIVIL, TOXIC

TEXTS = [
    *CIVIL,
    *TOXIC,
    "Die Verhandlungen in Genf sind gescheitert, sagte der Minister am Abend.",
    "Les négociations de paix reprendront la semaine prochaine à Doha.",
    "Переговоры о мире продолжатся на следующей неделе.",  # noqa: RUF001 (real Cyrillic)
    "和平谈判将于下周继续进行。",
    "Οι ειρηνευτικές συνομιλίες θα συνεχιστούν την επόμενη εβδομάδα.",  # noqa: RUF001
    "",
    "👍",
]


@pytest.fixture(scope="module")
def packaged() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def test_a_mapped_detector_ranks_every_language_as_the_packaged_one_does(
    tmp_path: Path, packaged: LanguageIdentifier
) -> None:
    mapped = mapped_detector(tmp_path)
    for text in TEXTS:
        assert mapped.rank(text) == packaged.rank(text), text
        assert mapped.classify(text) == packaged.classify(text), text


def test_the_files_are_unpacked_once_and_opened_again_after(tmp_path: Path) -> None:
    mapped_detector(tmp_path)
    (home,) = tmp_path.iterdir()
    written = {p.name: p.stat().st_mtime_ns for p in home.iterdir()}
    assert {"ptc.npy", "nextmove.npy", "row.npy", "output.npy"} <= set(written)
    mapped_detector(tmp_path)
    assert {p.name: p.stat().st_mtime_ns for p in home.iterdir()} == written
    assert list(tmp_path.iterdir()) == [home], "no scratch folder left behind"


def test_files_that_do_not_fit_together_are_refused_and_unpacked_again(
    tmp_path: Path, packaged: LanguageIdentifier
) -> None:
    mapped_detector(tmp_path)
    (home,) = tmp_path.iterdir()
    np.save(home / "output.npy", np.zeros(3, dtype=np.int32))  # fewer states than the rows
    with pytest.raises(ValueError, match="do not fit together"):
        detector_files._open(home)
    text = "Die Verhandlungen in Genf sind gescheitert, sagte der Minister."
    assert mapped_detector(tmp_path).rank(text) == packaged.rank(text)
    assert len(np.load(home / "output.npy")) == len(packaged.tk_output)


def test_a_process_falls_back_to_the_inflated_model_when_its_files_are_unusable(
    tmp_path: Path, packaged: LanguageIdentifier
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the folder should be")
    language.use_detector_files(blocked)
    try:
        detector = language.load_detector()
        text = "Die Verhandlungen in Genf sind gescheitert, sagte der Minister."
        assert detector.rank(text) == packaged.rank(text)
        assert isinstance(detector.tk_nextmove, type(packaged.tk_nextmove)), "inflated"
    finally:
        language.use_detector_files(None)


def test_a_process_using_files_detects_from_them(tmp_path: Path) -> None:
    language.use_detector_files(tmp_path)
    try:
        guess = language.detect_language("Les négociations de paix reprendront à Doha demain.")
        assert (guess.language, guess.reliable) == ("fr", True)
        assert isinstance(language.load_detector().tk_nextmove, memoryview)
    finally:
        language.use_detector_files(None)


def test_a_broken_folder_is_unpacked_again(tmp_path: Path, packaged: LanguageIdentifier) -> None:
    mapped_detector(tmp_path)
    (home,) = tmp_path.iterdir()
    (home / "ptc.npy").write_bytes(b"not an array")
    text = "Les négociations de paix reprendront la semaine prochaine à Doha."
    assert mapped_detector(tmp_path).rank(text) == packaged.rank(text)
