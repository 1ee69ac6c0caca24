"""The tenant's help center: documents in, grounded context out.

A shared layer like engines/: it imports only core, and chat_service (live replies),
finetune_loop (training examples) and eval (the grounding evaluation) all ground through it,
so a question is grounded the same way in all three.
"""

from knowledge.answers import (
    REFUSAL,
    Answer,
    faithful,
    grounded_prompt,
    policy_handoff,
    refusal,
    review,
)
from knowledge.base import KnowledgeBase, load_index
from knowledge.chunking import Chunk, split_document
from knowledge.documents import (
    DocumentError,
    SourceDocument,
    document_from_file,
    make_document,
    read_tree,
)
from knowledge.embeddings import MiniLMEmbeddings, default_embeddings
from knowledge.grounding import Grounding, Source, needs_lookup
from knowledge.sync import SyncReport, sync_documents

__all__ = [
    "Answer",
    "Chunk",
    "DocumentError",
    "Grounding",
    "KnowledgeBase",
    "MiniLMEmbeddings",
    "REFUSAL",
    "Source",
    "SourceDocument",
    "SyncReport",
    "default_embeddings",
    "document_from_file",
    "faithful",
    "grounded_prompt",
    "load_index",
    "make_document",
    "needs_lookup",
    "policy_handoff",
    "read_tree",
    "refusal",
    "review",
    "split_document",
    "sync_documents",
]
