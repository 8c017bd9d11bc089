"""Loading labelled comment corpora (CSV or CSV.gz) into texts and a NaN-masked label matrix."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from classifier.attributes import ATTRIBUTES

__all__ = ["Corpus", "DataError", "file_sha256", "load_corpus", "open_text"]

# Some Wikipedia comments are far longer than csv's default 128 KiB field limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class DataError(ValueError):
    """A data file is missing or lacks the columns it needs."""


@dataclass(frozen=True)
class Corpus:
    """Texts with an (n, len(ATTRIBUTES)) float label matrix; NaN means "not labelled"."""

    name: str
    texts: list[str]
    labels: np.ndarray
    ids: list[str]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, index: np.ndarray) -> Corpus:
        """Return the rows at `index` (integer positions) as a new corpus."""
        positions = [int(i) for i in index]
        return Corpus(
            name=self.name,
            texts=[self.texts[i] for i in positions],
            labels=self.labels[positions],
            ids=[self.ids[i] for i in positions],
            columns={k: [v[i] for i in positions] for k, v in self.columns.items()},
        )


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a UTF-8 CSV file for reading, gunzipping `.gz` files."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _parse_label(cell: str | None) -> float:
    """0 or 1; an empty (or absent) cell means "not labelled"; anything else is refused."""
    cell = (cell or "").strip()
    if not cell:
        return np.nan
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"label {cell!r} is not 0 or 1") from None
    if value not in (0.0, 1.0):
        raise ValueError(f"label {cell!r} is not 0 or 1")
    return value


def load_corpus(
    path: str | Path,
    *,
    text_column: str = "comment_text",
    attributes: Sequence[str] = ATTRIBUTES,
    keep_columns: Sequence[str] = (),
    require_labels: bool = True,
    label_columns: Mapping[str, str] | None = None,
) -> Corpus:
    """Read a CSV(.gz) corpus; attribute columns it lacks, or cells left empty, become NaN.

    Only `attributes` are read as labels (the default is all of ATTRIBUTES); pass a subset to
    ignore columns whose meaning differs in a given corpus. `label_columns` reads an attribute
    from a differently named column, e.g. `{"toxic": "offensive"}` for OLID. Raises
    `DataError` when the file is missing, has no `text_column`, or (with `require_labels`) no
    attribute column at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        return _read_corpus(
            path,
            text_column=text_column,
            attributes=attributes,
            keep_columns=keep_columns,
            require_labels=require_labels,
            label_columns=label_columns,
        )
    except (UnicodeDecodeError, OSError, EOFError, csv.Error) as exc:
        # Not UTF-8, not really gzip, truncated: name the file rather than show a traceback.
        raise DataError(f"{path.name}: cannot be read as a UTF-8 CSV ({exc})") from None


def _read_corpus(
    path: Path,
    *,
    text_column: str,
    attributes: Sequence[str],
    keep_columns: Sequence[str],
    require_labels: bool,
    label_columns: Mapping[str, str] | None,
) -> Corpus:
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        fieldnames = reader.fieldnames or []
        if text_column not in fieldnames:
            raise DataError(f"{path.name}: no column {text_column!r} (columns: {fieldnames})")
        source = {a: (label_columns or {}).get(a, a) for a in attributes}
        present = [a for a in attributes if source[a] in fieldnames]
        if require_labels and not present:
            raise DataError(f"{path.name}: none of the label columns {list(ATTRIBUTES)}")
        missing_keep = [c for c in keep_columns if c not in fieldnames]
        if missing_keep:
            raise DataError(f"{path.name}: no column(s) {missing_keep}")
        texts: list[str] = []
        ids: list[str] = []
        rows: list[list[float]] = []
        kept: dict[str, list[str]] = {c: [] for c in keep_columns}
        for number, row in enumerate(reader):
            texts.append(row[text_column] or "")
            ids.append(row.get("id") or str(number))
            try:
                rows.append(
                    [_parse_label(row[source[a]]) if a in present else np.nan for a in ATTRIBUTES]
                )
            except ValueError as exc:
                # Line numbers count the header as line 1.
                raise DataError(f"{path.name}, line {number + 2}: {exc}") from None
            for column in keep_columns:
                kept[column].append(row[column] or "")
    labels = np.asarray(rows, dtype=np.float64).reshape(len(texts), len(ATTRIBUTES))
    name = path.name.removesuffix(".gz").removesuffix(".csv")
    return Corpus(name=name, texts=texts, labels=labels, ids=ids, columns=kept)


def file_sha256(path: str | Path) -> str:
    """Return the hex sha256 of a file's bytes (identifies the data snapshot in the card)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
