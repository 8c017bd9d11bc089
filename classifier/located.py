"""Located comments: each comment's vocabulary n-grams, found once, with where they are.

Scoring a batch has to find every comment's word and char n-grams to count them; keeping
where each one is lets an explanation of any comment in the batch reuse them instead of
featurising the comment again (`ToxicityModel.featurize`, then `Featurized.located`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

__all__ = ["Featurized", "Located", "NgramOccurrences"]

# One text's vocabulary n-grams, by length then position: (features, positions, lengths).
Located = tuple[np.ndarray, np.ndarray, np.ndarray]


# A batch's n-gram entries, ordered by length, then text, then position: (keys, features,
# positions, lengths), and where each text starts among the positions.
_Entries = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
# One n-gram length's hits in a batch: (n, texts, features, positions).
_Hits = tuple[int, np.ndarray, np.ndarray, np.ndarray]


class NgramOccurrences:
    """Where a batch's vocabulary n-grams are, so a text scored in it is explained without
    featurising it again.

    Entries are ordered by n-gram length, then text, then position, so their keys (length x
    number of texts + text) ascend and one text's entries are a few slices of them. They are
    assembled on the first `of`: a batch whose comments are all published costs nothing.
    """

    def __init__(
        self, build: Callable[[], _Entries], *, n_texts: int, ngram_range: tuple[int, int]
    ) -> None:
        self._build = build
        self.n_texts = n_texts
        self.ngram_range = ngram_range

    @cached_property
    def _entries(self) -> _Entries:
        # Two threads may both build it; they build the same arrays.
        return self._build()

    def of(self, text: int) -> Located:
        """Text `text`'s entries, with positions in its own coordinates, in the order
        `WordNgramFeaturizer.occurrences` and `CharNgramFeaturizer.windows` give them."""
        keys, features, positions, lengths, origins = self._entries
        if self.n_texts == 1:  # a batch of one is the common case: nothing to select
            return features, positions, lengths
        low, high = self.ngram_range
        wanted = np.arange(low, high + 1) * self.n_texts + text
        first = keys.searchsorted(wanted)
        sizes = keys.searchsorted(wanted, side="right") - first
        index = (first - sizes.cumsum() + sizes).repeat(sizes) + np.arange(sizes.sum())
        return features[index], positions[index] - origins[text], lengths[index]


def _joined_entries(hits: Sequence[_Hits], *, origins: np.ndarray) -> _Entries:
    """Entries from each n-gram length's hits, lengths ascending."""
    empty = np.zeros(0, dtype=np.int64)
    docs = np.concatenate([d for _, d, _, _ in hits] or [empty])
    lengths = np.repeat(np.array([n for n, *_ in hits], dtype=np.int64), [len(h[1]) for h in hits])
    return (
        lengths * len(origins) + docs,
        np.concatenate([f for _, _, f, _ in hits] or [empty]),
        np.concatenate([p for *_, p in hits] or [empty]),
        lengths,
        origins,
    )


@dataclass(frozen=True)
class Featurized:
    """A batch of texts as `ToxicityModel.featurize` saw them: the feature matrix it scores,
    and where every text's word and char n-grams are, for explaining any of them."""

    texts: tuple[str, ...]
    matrix: sp.csr_matrix
    word: NgramOccurrences
    char: NgramOccurrences

    def located(self, text: str) -> tuple[Located, Located] | None:
        """`text`'s word and char n-grams, or None when the batch does not hold it."""
        try:
            index = self.texts.index(text)
        except ValueError:
            return None
        return self.word.of(index), self.char.of(index)
