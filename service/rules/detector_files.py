"""The language detector's model kept as plain array files and memory-mapped, not inflated.

py3langid ships its model LZMA-compressed: every process that loads it inflates 73 MB of
arrays into its own heap (a quarter of a scoring worker's memory) and spends about 0.5 s
doing so. Unpacked once into files under the deployment's `var/` and memory-mapped, the
arrays are paged in only where a text's n-grams lead, and those pages are shared by every
process on the machine: the API and each worker hold a few MB of the model rather than 73,
and a process opens it in milliseconds. The files are named after the packaged model's
sha256, so an upgraded py3langid unpacks its own; they hold numbers only (`.npy`, read
without pickle) and are checked against each other before use.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = ["mapped_detector", "packaged_model"]

# memoryview formats by item size, as py3langid's arrays use
_ITEM_CODES: dict[int, Literal["H", "I"]] = {2: "H", 4: "I"}


def packaged_model() -> Path:
    """The model file inside the py3langid package."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    return Path(str(MODEL_DIR)) / str(MODEL_FILE)


def mapped_detector(directory: Path, *, source: Path | None = None) -> Any:
    """A py3langid `LanguageIdentifier` over the files of `source` under `directory`,
    unpacking them first if no process has yet."""
    source = source or packaged_model()
    home = directory / hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    if not home.is_dir():
        _unpack(source, home)
    try:
        return _open(home)
    except (OSError, ValueError):
        # A folder left broken (a power cut mid-write, a disk error): unpacked once more.
        shutil.rmtree(home, ignore_errors=True)
        _unpack(source, home)
        return _open(home)


def _unpack(source: Path, home: Path) -> None:
    """Write the arrays to a folder of this process's own, then move it into place at once,
    so a process never opens a folder half written; another process's copy may win."""
    from py3langid.modelio import load_model

    ptc, pc, classes, nextmove, row, output = load_model(source)
    home.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Of this call's own: two threads (or processes) may unpack at once.
    scratch = Path(tempfile.mkdtemp(dir=home.parent, prefix=f".{home.name}."))
    np.save(scratch / "ptc.npy", np.asarray(ptc))
    np.save(scratch / "pc.npy", np.asarray(pc))
    np.save(scratch / "nextmove.npy", _unsigned(nextmove))
    np.save(scratch / "row.npy", _unsigned(row))
    np.save(scratch / "output.npy", np.asarray(output, dtype=np.int32))
    (scratch / "classes.json").write_text(json.dumps(list(classes)))
    try:
        scratch.rename(home)
    except OSError:  # another process moved its copy in first: use that one
        shutil.rmtree(scratch, ignore_errors=True)
        if not home.is_dir():
            raise


def _unsigned(values: Any) -> np.ndarray:
    """An `array.array` of py3langid's as the numpy array of the same bytes."""
    return np.frombuffer(values, dtype=np.dtype(f"u{values.itemsize}"))


def _open(home: Path) -> Any:
    from py3langid.langid import LanguageIdentifier

    ptc = np.load(home / "ptc.npy", mmap_mode="r", allow_pickle=False)
    pc = np.load(home / "pc.npy", allow_pickle=False)
    nextmove = np.load(home / "nextmove.npy", mmap_mode="r", allow_pickle=False)
    row = np.load(home / "row.npy", allow_pickle=False)
    output = np.load(home / "output.npy", allow_pickle=False)
    classes = json.loads((home / "classes.json").read_text())
    _check(home, ptc, pc, classes, nextmove, row, output)
    # A memoryview of the mapped file indexes as fast as py3langid's own array.array, and
    # its DFA walk reads one entry per byte of text.
    transitions = memoryview(nextmove).cast("B").cast(_ITEM_CODES[nextmove.itemsize])
    return LanguageIdentifier(
        ptc,
        pc,
        classes,
        transitions,
        output.tolist(),
        norm_probs=True,
        tk_row=row.tolist(),
    )


def _check(
    home: Path,
    ptc: np.ndarray,
    pc: np.ndarray,
    classes: list[str],
    nextmove: np.ndarray,
    row: np.ndarray,
    output: np.ndarray,
) -> None:
    """Refuse files that do not fit together. Only the shapes and the small arrays are read:
    scanning the transitions would page all of them in, and a walk past their end raises
    (memoryview and list indexing are checked) rather than reading garbage."""
    states, features = len(row), ptc.shape[0]
    fits = (
        ptc.ndim == 2
        and ptc.shape[1] == len(pc) == len(classes)
        and nextmove.ndim == 1
        and nextmove.size % 256 == 0
        and nextmove.itemsize in _ITEM_CODES
        and len(output) == states
        and (states == 0 or int(row.max()) < nextmove.size // 256)
        and (states == 0 or int(output.max()) < features)
    )
    if not fits:
        raise ValueError(f"the language model's files under {home} do not fit together")
