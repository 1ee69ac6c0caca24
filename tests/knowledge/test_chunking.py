"""Documents become chunks that keep their headings, and tables that are never cut."""

from __future__ import annotations

import pytest

from knowledge import DocumentError, make_document, split_document

LONG_TABLE = "\n".join(
    ["| Store | Opens | Closes |", "|---|---|---|"]
    + [
        f"| Store number {i} on a long street name | 7:00 am | {i % 12 + 1}:30 pm |"
        for i in range(40)
    ]
)


def test_chunks_carry_their_heading_path_and_the_document_id() -> None:
    doc = make_document(
        text="---\nid: hours\ntitle: Store hours\n---\n# Store hours\n\nIntro.\n\n"
        "## Weekdays\n\nOpen 7 to 7.\n\n### Holidays\n\nClosed on Dec 25.\n",
        kind="markdown",
        default_id="ignored",
        where="hours.md",
    )
    chunks = split_document(doc)
    assert doc.doc_id == "hours"
    assert [c.heading_path for c in chunks] == [
        ["Store hours"],
        ["Store hours", "Weekdays"],
        ["Store hours", "Weekdays", "Holidays"],
    ]
    assert "Holidays" in chunks[2].embedding_text(doc.title)


def test_a_table_longer_than_a_chunk_stays_whole_in_one_chunk() -> None:
    body = f"# Hours\n\n## All stores\n\nSome words before.\n\n{LONG_TABLE}\n\nSome words after."
    doc = make_document(text=body, kind="markdown", default_id="hours", where="hours.md")
    chunks = split_document(doc, chunk_chars=300)
    holding = [c for c in chunks if "| Store | Opens | Closes |" in c.text]
    assert len(holding) == 1
    assert LONG_TABLE in holding[0].text
    # Each body row becomes a unit a person can read: column names with the values.
    assert "Store: Store number 3 on a long street name; Opens: 7:00 am; Closes: 4:30 pm" in (
        holding[0].units
    )


def test_a_long_paragraph_is_split_and_no_text_is_lost() -> None:
    paragraph = " ".join(f"Sentence number {i} says something useful." for i in range(80))
    doc = make_document(
        text=f"# Long\n\n{paragraph}", kind="markdown", default_id="long", where="x"
    )
    chunks = split_document(doc, chunk_chars=400)
    assert len(chunks) > 3
    assert all(len(c.text) <= 400 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == paragraph.replace(" ", "")


def test_html_keeps_its_headings_and_tables() -> None:
    html = (
        "<h1>Sizes</h1><h2>Hot drinks</h2><table><tr><th>Size</th><th>Ounces</th></tr>"
        "<tr><td>Small</td><td>12 oz</td></tr><tr><td>Large</td><td>20 oz</td></tr></table>"
        "<script>alert(1)</script>"
    )
    doc = make_document(text=html, kind="html", default_id="sizes", where="sizes.html")
    chunks = split_document(doc)
    assert doc.title == "Sizes"
    assert chunks[0].heading_path == ["Sizes", "Hot drinks"]
    assert "Size: Large; Ounces: 20 oz" in chunks[0].units
    assert "alert" not in doc.body


def test_front_matter_fields_are_read_and_bad_ones_are_named() -> None:
    doc = make_document(
        text="---\nid: old-fees\ntitle: Old fees\nupdated: 2025-01-02\nstatus: superseded\n"
        "superseded_by: fees\nurl: https://help.example/old\n---\nText.",
        kind="markdown",
        default_id="x",
        where="old.md",
    )
    assert (doc.status, doc.superseded_by, str(doc.updated), doc.url) == (
        "superseded",
        "fees",
        "2025-01-02",
        "https://help.example/old",
    )
    with pytest.raises(DocumentError, match="old.md: status must be"):
        make_document(
            text="---\nstatus: archived\n---\nx", kind="markdown", default_id="a", where="old.md"
        )
    with pytest.raises(DocumentError, match="not an ISO date"):
        make_document(
            text="---\nupdated: soon\n---\nx", kind="markdown", default_id="a", where="b.md"
        )
    with pytest.raises(DocumentError, match="document id"):
        make_document(text="x", kind="text", default_id="../etc", where="c.txt")
