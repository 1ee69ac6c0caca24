"""Documents into chunks the retriever can rank and the prompt can quote.

Markdown headings first (langchain's MarkdownHeaderTextSplitter), so every chunk carries its
heading path; then each section is packed into chunks of whole blocks. A table is one block
and is never cut, so a price never loses the row or header that says what it is the price
of; only a paragraph longer than a chunk is cut, by langchain's recursive splitter.

Each chunk also lists its units - sentences, and table rows written out with their column
names - which are what the grounding step compares a question with, and what the widget
shows as the excerpt under a reply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from knowledge.documents import SourceDocument

CHUNK_CHARS = 1200
HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>")  # inline HTML in Markdown


def contextual_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """A chunk in its context, as it is embedded and searched: the same sentence means
    different things under "Refunds > Catering" and "Refunds > Subscriptions"."""
    path = [h for h in heading_path if h != title]
    return "\n".join([title, " > ".join(path), text]) if path else f"{title}\n{text}"


@dataclass
class Chunk:
    ordinal: int
    heading_path: list[str]
    text: str
    units: list[str] = field(default_factory=list)

    def heading_text(self, title: str) -> str:
        """What the help center says this part is about: its title and heading path."""
        return " > ".join([title, *(h for h in self.heading_path if h != title)])

    def embedding_text(self, title: str) -> str:
        return contextual_text(title, self.heading_path, self.text)


def plain(text: str) -> str:
    """Markdown emphasis, inline HTML tags and link targets out: what a reader sees."""
    return _LINK.sub(r"\1", _EMPHASIS.sub("", _TAG.sub("", text))).strip()


def _cells(line: str) -> list[str]:
    return [plain(cell) for cell in line.strip().strip("|").split("|")]


def _is_rule(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) <= set("|-: ")


def table_rows(table: str) -> list[str]:
    """Each body row as "Column: value; Column: value", the way a person reads it out."""
    lines = [line for line in table.splitlines() if line.strip()]
    if len(lines) < 2:
        return [plain(line) for line in lines]
    header = _cells(lines[0])
    rows = []
    for line in lines[1:]:
        if _is_rule(line):
            continue
        cells = _cells(line)
        pairs = [f"{h}: {c}" if h else c for h, c in zip(header, cells, strict=False) if c]
        rows.append("; ".join(pairs))
    return rows


def sentences(paragraph: str) -> list[str]:
    text = plain(re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", paragraph))
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 3]


def _blocks(section: str) -> list[tuple[str, bool]]:
    """(block text, is a table), in order; consecutive table lines form one table."""
    blocks: list[tuple[str, bool]] = []
    for raw in section.split("\n"):
        line = raw.rstrip()
        if not line.strip():
            continue
        is_table = line.lstrip().startswith("|")
        if is_table and blocks and blocks[-1][1]:
            blocks[-1] = (blocks[-1][0] + "\n" + line.strip(), True)
        else:
            blocks.append((line.strip() if is_table else line, is_table))
    return blocks


def _units(blocks: list[tuple[str, bool]]) -> list[str]:
    units: list[str] = []
    for text, is_table in blocks:
        units += table_rows(text) if is_table else sentences(text)
    return units


def _pack(blocks: list[tuple[str, bool]], chunk_chars: int) -> list[list[tuple[str, bool]]]:
    """Whole blocks into groups of at most ``chunk_chars`` (a lone longer table stays whole;
    a longer paragraph is cut first by the recursive splitter)."""
    long_paragraphs = RecursiveCharacterTextSplitter(chunk_size=chunk_chars, chunk_overlap=0)
    groups: list[list[tuple[str, bool]]] = [[]]
    size = 0
    for block, is_table in blocks:
        pieces = (
            [block] if is_table or len(block) <= chunk_chars else long_paragraphs.split_text(block)
        )
        for piece in pieces:
            if groups[-1] and size + len(piece) > chunk_chars:
                groups.append([])
                size = 0
            groups[-1].append((piece, is_table))
            size += len(piece) + 2
    return [g for g in groups if g]


def split_document(document: SourceDocument, *, chunk_chars: int = CHUNK_CHARS) -> list[Chunk]:
    headers = MarkdownHeaderTextSplitter(HEADINGS, strip_headers=True)
    chunks: list[Chunk] = []
    for section in headers.split_text(document.body):
        path = [section.metadata[key] for _, key in HEADINGS if key in section.metadata]
        for group in _pack(_blocks(section.page_content), chunk_chars):
            text = "\n\n".join(block for block, _ in group)
            chunks.append(Chunk(len(chunks), path, text, _units(group)))
    return chunks
