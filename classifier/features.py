"""TF-IDF featurizers for word n-grams and within-word character n-grams, fast at inference."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import chain, repeat

import numpy as np
import scipy.sparse as sp

from classifier.located import NgramOccurrences, _Entries, _joined_entries

__all__ = [
    "CharNgramFeaturizer",
    "WordNgramFeaturizer",
    "tfidf_weight",
]

WORD_PATTERN = re.compile(r"(?u)\b\w+\b")
_MAX_ALPHABET = 4000  # keeps base**5 below 2**63 so an n-gram code is exact, never a hash


def _alphabet_cap(longest: int) -> int:
    """The largest alphabet whose base-(size + 2) codes of `longest` chars fit in an int64."""
    size = min(_MAX_ALPHABET, int((2.0**63) ** (1.0 / longest)) - 2)
    while size > 1 and float(size + 2) ** longest >= 2.0**63:
        size -= 1
    return size


_FIT_CHUNK = 4000
# Codes left after the first probe, times the longest probe sequence, that are probed at once.
_MATRIX_CELLS = 1 << 14
# Texts up to this many tokens find their word n-grams by dictionary lookups (see
# `WordNgramFeaturizer.occurrences`); a longer one with array operations.
_TERM_LOOKUP_TOKENS = 256


def tfidf_weight(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Apply sublinear tf, idf and row-wise l2 normalisation (as TfidfVectorizer does)."""
    out = counts.astype(np.float64, copy=True)
    np.log(out.data, out=out.data)
    out.data += 1.0
    out.data *= idf[out.indices]
    norms = np.sqrt(np.bincount(_row_ids(out), weights=out.data**2, minlength=out.shape[0]))
    norms[norms == 0.0] = 1.0
    out.data /= np.repeat(norms, np.diff(out.indptr))
    return out


def _row_ids(matrix: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))


def _smooth_idf(counts: sp.csr_matrix) -> np.ndarray:
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(np.float64)
    n = counts.shape[0]
    idf: np.ndarray = np.log((1.0 + n) / (1.0 + df)) + 1.0
    return idf


def _csr(rows: np.ndarray, cols: np.ndarray, *, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """Count (row, col) pairs into a canonical CSR matrix.

    One sort of a combined int64 key is about 3x faster than scipy's COO conversion, which
    sorts every row's indices separately to merge duplicates.
    """
    if len(rows) == 0:
        return sp.csr_matrix((n_rows, n_cols), dtype=np.float64)
    key = np.sort(rows.astype(np.int64) * n_cols + cols)
    first = np.empty(len(key), dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, len(key))).astype(np.float64)
    unique = key[starts]
    row_of = unique // n_cols
    indptr = np.searchsorted(row_of, np.arange(n_rows + 1))
    return sp.csr_matrix((counts, unique - row_of * n_cols, indptr), shape=(n_rows, n_cols))


def _rolling_codes(
    ids: np.ndarray, base: int, *, ngram_range: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray]]:
    """For each n in range, the integer code of every n-long window of `ids` (base-`base` digits).

    Each length extends the previous one's codes by one digit, so all lengths cost one pass each.
    """
    code = np.zeros(len(ids), dtype=np.int64)
    for n in range(1, ngram_range[1] + 1):
        m = len(ids) - n + 1
        if m <= 0:
            return
        code = code[:m] + ids[n - 1 : n - 1 + m] * base ** (n - 1)
        if n >= ngram_range[0]:
            yield n, code


def _text_starts(texts: Sequence[str]) -> np.ndarray:
    """Where each padded text begins in the string `CharNgramFeaturizer.windows` joins."""
    return np.cumsum([0] + [len(t.replace("\x00", "")) + 3 for t in texts[:-1]])


# What locates one word n-gram length's hits: (n, texts, features, valid windows, hits).
_Found = tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class _CodeTable:
    """An open-addressing hash table from int64 codes to positions, probed for whole arrays.

    A binary search over 200k codes was half the featurisation time; one multiplicative hash
    probe resolves nearly every lookup.
    """

    _EMPTY = np.int64(-1)  # codes are never negative
    _MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, keys: np.ndarray) -> None:
        self._bits = max(4, int(np.ceil(np.log2(max(len(keys), 1) * 2.5))))
        size = 1 << self._bits
        self._mask = size - 1
        self._keys = np.full(size, self._EMPTY, dtype=np.int64)
        self._values = np.full(size, -1, dtype=np.int64)
        pending = np.arange(len(keys))
        home = self._home(keys)
        probe = 0
        while len(pending):
            slots = (home[pending] + probe) & self._mask
            free = self._keys[slots] == self._EMPTY
            slots, candidates = slots[free], pending[free]
            first_slots, first = np.unique(slots, return_index=True)
            self._keys[first_slots] = keys[candidates[first]]
            self._values[first_slots] = candidates[first]
            placed = np.zeros(len(keys), dtype=bool)
            placed[candidates[first]] = True
            pending = pending[~placed[pending]]
            probe += 1
        self._max_probe = probe

    def _home(self, codes: np.ndarray) -> np.ndarray:
        mixed = codes.astype(np.uint64) * self._MULTIPLIER
        return (mixed >> np.uint64(64 - self._bits)).astype(np.int64)

    def get(self, codes: np.ndarray) -> np.ndarray:
        """Positions of `codes` in the key array, -1 where absent."""
        home = self._home(codes)
        found = self._keys[home]
        hit = found == codes
        result = np.empty(len(codes), dtype=np.int64)
        result.fill(-1)
        result[hit] = self._values[home[hit]]
        active = (~hit & (found != self._EMPTY)).nonzero()[0]
        if len(active) * self._max_probe <= _MATRIX_CELLS:
            # Nine codes in ten settle at their home slot; the few left of a small input
            # (one comment's) probe all their further slots as one matrix, a handful of array
            # operations instead of a round of them per probe. Insertion fills a probe
            # sequence from its home without gaps, so a code found anywhere in it is there.
            slots = (home[active, None] + np.arange(1, self._max_probe)) & self._mask
            rows, probes = (self._keys[slots] == codes[active, None]).nonzero()
            result[active[rows]] = self._values[slots[rows, probes]]
            return result
        for probe in range(1, self._max_probe):
            if not len(active):
                break
            slots = (home[active] + probe) & self._mask
            found = self._keys[slots]
            hit = found == codes[active]
            result[active[hit]] = self._values[slots[hit]]
            active = active[~hit & (found != self._EMPTY)]
        return result


class WordNgramFeaturizer:
    """Word 1..n-gram TF-IDF over already-normalised text (tokens are `\\w+` runs)."""

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (1, 2),
        max_features: int = 100_000,
        min_count: int = 2,
    ) -> None:
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.min_count = min_count

    def _grams(self, tokens: list[str]) -> list[str]:
        low, high = self.ngram_range
        grams: list[str] = []
        for n in range(low, high + 1):
            if n == 1:
                grams.extend(tokens)
            else:
                grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def fit_counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn the vocabulary and idf from `texts`; return their raw count matrix."""
        totals: Counter[str] = Counter()
        for text in texts:
            totals.update(self._grams(WORD_PATTERN.findall(text)))
        frequent = [(g, c) for g, c in totals.items() if c >= self.min_count]
        # Ties broken by the term itself so the vocabulary is deterministic.
        frequent.sort(key=lambda item: (-item[1], item[0]))
        self.set_vocabulary([g for g, _ in frequent[: self.max_features]], np.ones(0))
        counts = self.counts(texts)
        self.idf_ = _smooth_idf(counts)
        return counts

    def set_vocabulary(self, vocabulary: list[str], idf: np.ndarray) -> WordNgramFeaturizer:
        """Install a learned vocabulary (feature order) and idf, e.g. from an artifact."""
        self.vocabulary_ = list(vocabulary)
        self.index_ = {term: i for i, term in enumerate(self.vocabulary_)}
        self.idf_ = np.asarray(idf, dtype=np.float64)
        # Tokens get small integer ids and an n-gram becomes an exact base-(T + 2) integer, so
        # a batch's bigrams are found with array operations instead of joined strings.
        tokens = sorted({t for term in self.vocabulary_ for t in term.split(" ")})
        self._token_ids = {t: i for i, t in enumerate(tokens, start=1)}
        self._unknown = len(tokens) + 1
        self._base = len(tokens) + 2
        if float(self._base) ** self.ngram_range[1] >= 2.0**63:
            raise ValueError("word vocabulary too large for exact n-gram codes")
        codes = np.zeros(len(self.vocabulary_), dtype=np.int64)
        for i, term in enumerate(self.vocabulary_):
            for k, token in enumerate(term.split(" ")):
                codes[i] += self._token_ids[token] * self._base**k
        self._table = _CodeTable(codes)
        return self

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Raw n-gram counts of `texts` over the learned vocabulary."""
        return self._counts(texts, located=None)[0]

    def counts_located(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, NgramOccurrences]:
        """`counts`, and where every n-gram is: positions are token indices in each text."""
        found: list[_Found] = []
        matrix, n_tokens = self._counts(texts, located=found)

        def build() -> _Entries:
            hits = [(n, d, f, valid.nonzero()[0][hit]) for n, d, f, valid, hit in found]
            return _joined_entries(hits, origins=n_tokens.cumsum() - n_tokens)

        located = NgramOccurrences(build, n_texts=len(texts), ngram_range=self.ngram_range)
        return matrix, located

    def _counts(
        self,
        texts: Sequence[str],
        *,
        located: list[_Found] | None,
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """`counts` and each text's number of tokens; with `located`, also keep per n-gram
        length what locates its hits (see `_Found`), at no cost until they are asked for."""
        tokenized = [WORD_PATTERN.findall(t) for t in texts]
        lengths = np.fromiter(map(len, tokenized), dtype=np.int64, count=len(tokenized))
        get, unknown = self._token_ids.get, self._unknown
        ids = np.fromiter(
            (get(t, unknown) for t in chain.from_iterable(tokenized)),
            dtype=np.int64,
            count=int(lengths.sum()),
        )
        doc_of = np.repeat(np.arange(len(texts)), lengths)
        bad = np.concatenate(([0], np.cumsum(ids == unknown)))
        docs, features = [], []
        for n, code in _rolling_codes(ids, self._base, ngram_range=self.ngram_range):
            m = len(code)
            i = np.arange(m)
            valid = (bad[i + n] == bad[i]) & (doc_of[:m] == doc_of[n - 1 : n - 1 + m])
            found = self._table.get(code[valid])
            hit = found >= 0
            docs.append(doc_of[:m][valid][hit])
            features.append(found[hit])
            if located is not None:
                located.append((n, docs[-1], features[-1], valid, hit))
        if not docs:
            empty = np.zeros(0, dtype=np.int64)
            return _csr(empty, empty, n_rows=len(texts), n_cols=len(self.vocabulary_)), lengths
        matrix = _csr(
            np.concatenate(docs),
            np.concatenate(features),
            n_rows=len(texts),
            n_cols=len(self.vocabulary_),
        )
        return matrix, lengths

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows for `texts`."""
        return tfidf_weight(self.counts(texts), self.idf_)

    def occurrences(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every vocabulary n-gram in one text's `tokens`: (features, first tokens, lengths).

        The same n-grams `counts` finds, located, with array operations rather than a joined
        string per window (explanations need where each n-gram is, not only how often).
        """
        if len(tokens) <= _TERM_LOOKUP_TOKENS:
            return self._occurrences_by_term(tokens)
        get, unknown = self._token_ids.get, self._unknown
        ids = np.fromiter((get(t, unknown) for t in tokens), dtype=np.int64, count=len(tokens))
        bad = np.concatenate(([0], np.cumsum(ids == unknown)))
        codes, firsts, lengths = [], [], []
        for n, code in _rolling_codes(ids, self._base, ngram_range=self.ngram_range):
            valid = np.flatnonzero(bad[n : n + len(code)] == bad[: len(code)])
            codes.append(code[valid])
            firsts.append(valid)
            lengths.append(np.full(len(valid), n, dtype=np.int64))
        if not codes:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        # One table lookup for every length: each costs a few array operations however small.
        found = self._table.get(np.concatenate(codes))
        hit = found >= 0
        return found[hit], np.concatenate(firsts)[hit], np.concatenate(lengths)[hit]

    def _occurrences_by_term(
        self, tokens: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`occurrences` for a short text: each n-gram looked up as its joined string.

        For a comment's few dozen tokens, dictionary lookups in C cost a fraction of the
        dozen array operations per n-gram length; they find the same n-grams, since every
        vocabulary term is its tokens joined by one space.
        """
        low, high = self.ngram_range
        sizes = [max(len(tokens) - n + 1, 0) for n in range(low, high + 1)]
        found: list[int] = []
        for n, size in zip(range(low, high + 1), sizes, strict=True):
            windows = zip(*(tokens[k : k + size] for k in range(n)), strict=True)
            terms = tokens if n == 1 else map(" ".join, windows)
            found.extend(map(self.index_.get, terms, repeat(-1)))
        features = np.array(found, dtype=np.int64)
        counts = np.array(sizes, dtype=np.int64)
        lengths = np.arange(low, high + 1, dtype=np.int64).repeat(counts)
        firsts = np.arange(len(features)) - (counts.cumsum() - counts).repeat(counts)
        hit = (features >= 0).nonzero()[0]
        return features[hit], firsts[hit], lengths[hit]


class CharNgramFeaturizer:
    """Character n-grams inside space-padded words (sklearn's `char_wb`), vectorised in numpy.

    Each n-gram is encoded exactly as an integer in base `len(alphabet) + 2`, so one batch is
    featurised with a few array operations instead of a Python loop over its characters.
    """

    def __init__(
        self,
        *,
        ngram_range: tuple[int, int] = (2, 5),
        max_features: int = 200_000,
        min_count: int = 2,
    ) -> None:
        if ngram_range[0] < 2:
            # A 1-gram " " would be counted per gap rather than per padded word.
            raise ValueError("char n-grams start at length 2")
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.min_count = min_count

    # -- encoding -------------------------------------------------------------------------
    def _set_alphabet(self, alphabet: str) -> None:
        self.alphabet_ = alphabet
        lookup = np.full(0x110000, len(alphabet) + 1, dtype=np.int64)  # unknown
        lookup[0] = 0  # document separator
        lookup[[ord(c) for c in alphabet]] = np.arange(1, len(alphabet) + 1)
        self._lookup = lookup
        self._base = len(alphabet) + 2
        self._space = alphabet.index(" ") + 1

    def windows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All valid n-gram windows of `texts` joined: (codes, positions, lengths).

        Each text is padded to `" " + text + " "` and the padded texts are joined with one
        separator; positions index that joined string (see `documents_of`).
        """
        padded = [" " + t.replace("\x00", "") + " " for t in texts]
        ids = self._lookup[np.frombuffer("\x00".join(padded).encode("utf-32-le"), np.uint32)]
        bad = np.concatenate(([0], np.cumsum((ids == 0) | (ids == self._base - 1))))
        space = ids == self._space
        spaces = np.concatenate(([0], np.cumsum(space)))
        out_codes, out_positions, out_lengths = [], [], []
        for n, code in _rolling_codes(ids, self._base, ngram_range=self.ngram_range):
            m = len(code)
            # No separator or unknown char inside, and spaces only at the two ends.
            valid = (bad[n : n + m] == bad[:m]) & (spaces[n - 1 : n - 1 + m] == spaces[1 : 1 + m])
            if n == 2:
                valid &= ~(space[:m] & space[1 : m + 1])
            positions = valid.nonzero()[0]
            out_codes.append(code[positions])
            out_positions.append(positions)
            out_lengths.append(n)
        if not out_codes:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        counts = [len(p) for p in out_positions]
        lengths = np.array(out_lengths, dtype=np.int64).repeat(counts)
        return np.concatenate(out_codes), np.concatenate(out_positions), lengths

    @staticmethod
    def documents_of(texts: Sequence[str], positions: np.ndarray) -> np.ndarray:
        """The index of the text each joined-string position (from `windows`) falls in."""
        return np.searchsorted(_text_starts(texts), positions, side="right") - 1

    def decode(self, code: int) -> str:
        """The n-gram string for an integer code."""
        chars = []
        while code:
            code, digit = divmod(code, self._base)
            chars.append(self.alphabet_[digit - 1])
        return "".join(chars)

    # -- fitting and transforming ---------------------------------------------------------
    def fit_counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Learn alphabet, vocabulary and idf from `texts`; return their raw count matrix."""
        chars: Counter[str] = Counter()
        for text in texts:
            chars.update(text)
        chars.pop("\x00", None)
        chars[" "] += 1
        alphabet = sorted(c for c, _ in chars.most_common(_alphabet_cap(self.ngram_range[1])))
        self._set_alphabet("".join(alphabet))
        uniques, totals = [], []
        for start in range(0, len(texts), _FIT_CHUNK):
            codes = self.windows(texts[start : start + _FIT_CHUNK])[0]
            u, c = np.unique(codes, return_counts=True)
            uniques.append(u)
            totals.append(c)
        u, inverse = np.unique(np.concatenate(uniques), return_inverse=True)
        c = np.bincount(inverse, weights=np.concatenate(totals))
        keep = np.flatnonzero(c >= self.min_count)
        # Stable sort on the code breaks count ties deterministically.
        top = keep[np.argsort(-c[keep], kind="stable")[: self.max_features]]
        self.set_vocabulary(self.alphabet_, np.sort(u[top]), idf=np.ones(0))
        counts = self.counts(texts)
        self.idf_ = _smooth_idf(counts)
        return counts

    def set_vocabulary(
        self, alphabet: str, codes: np.ndarray, *, idf: np.ndarray
    ) -> CharNgramFeaturizer:
        """Install a learned alphabet, sorted n-gram codes (feature order) and idf."""
        self._set_alphabet(alphabet)
        self.codes_ = np.asarray(codes, dtype=np.int64)
        if np.any(np.diff(self.codes_) <= 0):
            raise ValueError("char n-gram codes must be strictly increasing")
        self.idf_ = np.asarray(idf, dtype=np.float64)
        self._table = _CodeTable(self.codes_)
        return self

    def lookup(self, codes: np.ndarray) -> np.ndarray:
        """Feature index of each code, or -1 when it is not in the vocabulary."""
        return self._table.get(codes)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Raw n-gram counts of `texts` over the learned vocabulary."""
        if len(texts) > _FIT_CHUNK:
            # Every window costs three int64s; chunks keep a training set's windows from
            # needing gigabytes at once.
            return sp.vstack(
                [
                    self.counts(texts[start : start + _FIT_CHUNK])
                    for start in range(0, len(texts), _FIT_CHUNK)
                ],
                format="csr",
            )
        codes, positions, _ = self.windows(texts)
        features = self.lookup(codes)
        hit = features >= 0
        docs = self.documents_of(texts, positions[hit])
        return _csr(docs, features[hit], n_rows=len(texts), n_cols=len(self.codes_))

    def counts_located(self, texts: Sequence[str]) -> tuple[sp.csr_matrix, NgramOccurrences]:
        """`counts` (in one piece: for a batch to score), and where every n-gram is: positions
        are window starts in each padded text, as `windows` gives them for that text alone."""
        codes, positions, lengths = self.windows(texts)
        features = self.lookup(codes)
        hit = features >= 0
        features, positions = features[hit], positions[hit]
        origins = _text_starts(texts)
        docs = origins.searchsorted(positions, side="right") - 1
        matrix = _csr(docs, features, n_rows=len(texts), n_cols=len(self.codes_))

        def build() -> _Entries:
            # Windows come by length, then position: by length, then text, as keys must.
            hit_lengths = lengths[hit]
            return hit_lengths * len(texts) + docs, features, positions, hit_lengths, origins

        located = NgramOccurrences(build, n_texts=len(texts), ngram_range=self.ngram_range)
        return matrix, located

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """TF-IDF rows for `texts`."""
        return tfidf_weight(self.counts(texts), self.idf_)
