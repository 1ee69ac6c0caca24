"""A process's view of every tenant's help center: indexes built lazily from the database and
rebuilt when a tenant's knowledge revision moves on. Serving, training and evaluation all
ground through one of these, so they all see the same articles the same way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np
from sqlalchemy.engine import Engine as DbEngine

from core.crud import knowledge as store
from core.db import read_scope
from core.settings import KnowledgeConfig
from knowledge.chunking import contextual_text
from knowledge.embeddings import DIMENSIONS, MiniLMEmbeddings, default_embeddings, from_blob
from knowledge.grounding import Grounding, ground
from knowledge.index import IndexedChunk, TenantIndex

log = logging.getLogger(__name__)


def load_index(db: DbEngine, tenant_id: int) -> TenantIndex:
    with read_scope(db) as session:
        rows = store.indexed_chunks(session=session, tenant_id=tenant_id)
        chunks, vectors, headings, units = [], [], [], []
        for document, chunk in rows:
            chunks.append(
                IndexedChunk(
                    doc_id=document.doc_id,
                    title=document.title,
                    url=document.url,
                    heading_path=tuple(chunk.heading_path),
                    text=chunk.text,
                    units=tuple(chunk.units),
                    search_text=contextual_text(document.title, chunk.heading_path, chunk.text),
                )
            )
            vectors.append(from_blob(chunk.vector))
            headings.append(from_blob(chunk.heading_vector))
            units.append(from_blob(chunk.unit_vectors))
    empty = np.zeros((0, DIMENSIONS), np.float32)
    matrix = np.concatenate(vectors) if vectors else empty
    heading_matrix = np.concatenate(headings) if headings else empty
    return TenantIndex(chunks, matrix, units, heading_matrix)


class KnowledgeBase:
    def __init__(
        self,
        db: DbEngine,
        config: KnowledgeConfig,
        embeddings: MiniLMEmbeddings | None = None,
    ) -> None:
        self._db = db
        self.config = config
        self._embeddings = embeddings
        self._indexes: dict[int, tuple[int, TenantIndex]] = {}
        self._lock = threading.Lock()

    @property
    def embeddings(self) -> MiniLMEmbeddings:
        if self._embeddings is None:
            self._embeddings = default_embeddings()
        return self._embeddings

    def index(self, tenant_id: int) -> TenantIndex:
        with read_scope(self._db) as session:
            revision = store.knowledge_revision(session=session, tenant_id=tenant_id) or 0
        with self._lock:
            cached = self._indexes.get(tenant_id)
            if cached is not None and cached[0] == revision:
                return cached[1]
            index = load_index(self._db, tenant_id)
            self._indexes[tenant_id] = (revision, index)
            log.info(
                "knowledge index (tenant=%s revision=%s): %d chunks",
                tenant_id,
                revision,
                len(index),
            )
            return index

    def has_documents(self, tenant_id: int) -> bool:
        return self.config.enabled and len(self.index(tenant_id)) > 0

    def ground_if_documented(
        self, tenant_id: int, customer_turns: Sequence[str]
    ) -> Grounding | None:
        """None when grounding is off or the tenant has no documents: one index lookup (one
        revision check) per reply."""
        if not self.config.enabled:
            return None
        index = self.index(tenant_id)
        return self._ground(index, customer_turns) if len(index) else None

    def ground(self, tenant_id: int, customer_turns: Sequence[str]) -> Grounding:
        return self._ground(self.index(tenant_id), customer_turns)

    def snapshot(self, tenant_id: int) -> Callable[[Sequence[str]], Grounding]:
        """Grounding against the index as it is now, with no database access afterwards: for
        work that grounds many questions at once (the nightly dataset), one revision check
        instead of one per question, and one index for the whole run."""
        index = self.index(tenant_id)
        return lambda customer_turns: self._ground(index, customer_turns)

    def _ground(self, index: TenantIndex, customer_turns: Sequence[str]) -> Grounding:
        return ground(
            index,
            self.embeddings,
            customer_turns,
            min_support=self.config.min_support,
            max_sources=self.config.max_sources,
            source_margin=self.config.source_margin,
            context_chunks=self.config.context_chunks,
        )
