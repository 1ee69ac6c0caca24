"""A small help center for tests: a coffee shop's pickup, delivery and refund articles, written
here so the tests do not depend on the shared dataset's wording."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine

from knowledge import SyncReport, default_embeddings, read_tree, sync_documents

ARTICLES = {
    "delivery.md": """---
id: delivery
title: Delivery fees and hours
updated: 2026-03-01
url: https://help.example/delivery
---

# Delivery fees and hours

## Fees

| Order subtotal | Delivery fee |
|---|---|
| Under $25 | $3.49 |
| $25 or more | Free |

The minimum order for delivery is $12.

## Hours

Delivery runs from opening until 45 minutes before closing.
""",
    "delivery-2025.md": """---
id: delivery-2025
title: Delivery fees (2025)
status: superseded
superseded_by: delivery
---

# Delivery fees (2025)

Delivery costs $2.99 and is free over $20.
""",
    "refunds.md": """---
id: refunds
title: Refunds for app orders
---

# Refunds for app orders

You can request a refund within 7 days of an app order, from Order history.
Missing items must be reported within 24 hours.
""",
    "pickup.html": """<h1>Pickup orders</h1>
<h2>Where to collect</h2>
<p>Pickup orders wait on the shelf by the door, labelled with your first name.</p>
<h2>How long we keep them</h2>
<p>We keep a pickup order for 30 minutes after it is ready.</p>""",
    "wifi.txt": "Every store has free Wi-Fi: join the network CoffeeGuest and accept the terms.",
}


def write_articles(folder: Path, articles: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (articles or ARTICLES).items():
        (folder / name).write_text(text)
    return folder


def index_folder(db: DbEngine, tenant_id: int, folder: Path) -> SyncReport:
    return sync_documents(
        db,
        tenant_id=tenant_id,
        source=f"files:{folder}",
        documents=read_tree(folder),
        embeddings=default_embeddings(),
    )
