"""A tenant's searchable index, held in memory: BM25 (bm25s) and dense vectors side by side,
fused by reciprocal rank.

Why both: BM25 finds the exact words a help center uses (a store's name, "Wi-Fi", "$30"),
the dense half finds the same meaning in other words ("train station location" for the
station store) and survives typos. Neither alone ranks the right article first as often as
their fusion does (BENCHMARKS.md). Two finer dense rankings join them at half weight: by the
chunk's best single sentence or table row, and by its title and heading path. Superseded documents stay stored and listed but are not
indexed: an answer can never come from them.

The index is rebuilt from the database when the tenant's knowledge revision changes, so every
serving process sees the same documents without a shared vector server; brute-force dot
products over float32 vectors take milliseconds up to about 100k chunks (BENCHMARKS.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np

RRF_K = 60
# The best-sentence and the title-and-headings rankings count half each beside BM25 and the chunk
# vectors (BENCHMARKS.md has what each added on the dev questions).
SIDE_WEIGHT = 0.5
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
STOPWORDS = frozenset(
    """a an and are as at be but by can could do does for from had has have how i if in is it
    its i'm me my of on or our please so than that the their them then there these they this to
    us was we were what when where which who why will with would you your hi hey hello thanks
    thank just like get got im u ur pls""".split()
)


def words(text: str) -> list[str]:
    """Lower-case words, stopwords out; a hyphenated word also counts as its parts and as one
    ("wi-fi" matches "wifi" and "wi fi"). No stemming: on the dev questions it cost more
    first places than it won (BENCHMARKS.md)."""
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if "-" in word:
            parts = word.split("-")
            out += [p for p in parts if p not in STOPWORDS] + ["".join(parts)]
        elif word not in STOPWORDS:
            out.append(word)
    return out


@dataclass(frozen=True)
class IndexedChunk:
    doc_id: str
    title: str
    url: str | None
    heading_path: tuple[str, ...]
    text: str
    units: tuple[str, ...]
    search_text: str


@dataclass(frozen=True)
class ChunkHit:
    chunk: IndexedChunk
    position: int  # row in the index's matrices
    score: float  # fused reciprocal-rank score


class TenantIndex:
    def __init__(
        self,
        chunks: Sequence[IndexedChunk],
        vectors: np.ndarray,
        unit_vectors: Sequence[np.ndarray],
        heading_vectors: np.ndarray,
    ) -> None:
        self.chunks = list(chunks)
        self.vectors = vectors
        self.heading_vectors = heading_vectors
        self.unit_vectors = list(unit_vectors)
        # All units in one matrix, chunk by chunk, for the sentence-level ranking.
        self._unit_matrix = (
            np.concatenate(self.unit_vectors) if self.unit_vectors else np.zeros((0, 1), np.float32)
        )
        sizes = np.array([len(v) for v in self.unit_vectors], dtype=np.int64)
        self._unit_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if len(sizes) else sizes
        self._has_units = sizes > 0
        self._bm25: bm25s.BM25 | None = None
        if self.chunks:
            self._bm25 = bm25s.BM25()
            self._bm25.index(
                [words(c.search_text) or ["_"] for c in self.chunks], show_progress=False
            )

    def __len__(self) -> int:
        return len(self.chunks)

    def _lexical_order(self, query: str) -> list[int]:
        terms = words(query)
        if self._bm25 is None or not terms:
            return []
        scores = self._bm25.get_scores(terms)
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order if scores[i] > 0]

    @staticmethod
    def _dense_order(vectors: np.ndarray, query_vector: np.ndarray) -> list[int]:
        scores = vectors @ query_vector
        return [int(i) for i in np.argsort(-scores, kind="stable")]

    def _unit_order(self, query_vector: np.ndarray) -> list[int]:
        """Chunks by their single best sentence or row: a specific question ("what does the
        2 lb bag cost") matches one row better than it matches the whole chunk."""
        if not len(self._unit_matrix):
            return []
        scores = self._unit_matrix @ query_vector
        best = np.full(len(self.chunks), -1.0, dtype=np.float32)
        starts = self._unit_starts[self._has_units]
        best[self._has_units] = np.maximum.reduceat(scores, starts)
        return [int(i) for i in np.argsort(-best, kind="stable") if self._has_units[i]]

    def search(
        self, queries: Sequence[tuple[str, np.ndarray, float]], *, limit: int = 20
    ) -> list[ChunkHit]:
        """Chunks best first. Each query is (text, its vector, weight); every query adds its
        BM25 and dense rankings to one reciprocal-rank fusion."""
        if not self.chunks:
            return []
        fused: dict[int, float] = {}
        for text, vector, weight in queries:
            orders = (
                (self._lexical_order(text), 1.0),
                (self._dense_order(self.vectors, vector), 1.0),
                (self._unit_order(vector), SIDE_WEIGHT),
                # By title and heading path: the help center's own label for what a part
                # answers ("Deleting your account").
                (self._dense_order(self.heading_vectors, vector), SIDE_WEIGHT),
            )
            for order, share in orders:
                for rank, position in enumerate(order):
                    fused[position] = fused.get(position, 0.0) + weight * share / (RRF_K + rank + 1)

        best = sorted(fused, key=lambda p: -fused[p])[:limit]
        return [ChunkHit(self.chunks[p], p, fused[p]) for p in best]
