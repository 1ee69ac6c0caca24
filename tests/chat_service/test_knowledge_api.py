"""The help center over REST: upload, list, delete and sync status, per tenant API key."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.chat_service.test_rest_api import client, new_tenant  # noqa: F401 (fixture)
from tests.knowledge.corpus import ARTICLES


def upload(client: TestClient, headers: dict[str, str], files: dict[str, str]):  # noqa: ANN201, F811
    return client.post(
        "/v1/knowledge/documents",
        files=[("files", (name, text.encode(), "text/plain")) for name, text in files.items()],
        headers=headers,
    )


def test_upload_list_delete_and_status(client: TestClient) -> None:  # noqa: F811
    _, headers = new_tenant(client)
    first = upload(client, headers, {k: ARTICLES[k] for k in ("delivery.md", "pickup.html")})
    assert first.status_code == 201, first.text
    assert sorted(first.json()["added"]) == ["delivery", "pickup"] and first.json()["chunks"] > 0

    again = upload(client, headers, {"delivery.md": ARTICLES["delivery.md"]})
    assert again.json() == {"added": [], "changed": [], "unchanged": ["delivery"], "chunks": 0}

    listed = client.get("/v1/knowledge/documents", headers=headers).json()
    assert [(d["doc_id"], d["title"], d["url"]) for d in listed] == [
        ("delivery", "Delivery fees and hours", "https://help.example/delivery"),
        ("pickup", "Pickup orders", None),
    ]
    status = client.get("/v1/knowledge/status", headers=headers).json()
    assert (status["revision"], status["documents"], status["current"]) == (1, 2, 2)
    assert [s["source"] for s in status["sources"]] == ["api"]

    assert client.delete("/v1/knowledge/documents/pickup", headers=headers).status_code == 204
    missing = client.delete("/v1/knowledge/documents/pickup", headers=headers)
    assert missing.status_code == 404 and "pickup" in missing.json()["detail"]
    assert client.get("/v1/knowledge/status", headers=headers).json()["revision"] == 2


def test_bad_uploads_are_refused_with_the_reason_and_nothing_is_stored(
    client: TestClient,  # noqa: F811
) -> None:
    _, headers = new_tenant(client)
    wrong_type = upload(client, headers, {"notes.pdf": "%PDF"})
    assert wrong_type.status_code == 422 and "unsupported file type" in wrong_type.json()["detail"]
    bad_meta = upload(
        client, headers, {"ok.md": "# Fine", "bad.md": "---\nupdated: tomorrow\n---\nText"}
    )
    assert bad_meta.status_code == 422 and "bad.md" in bad_meta.json()["detail"]
    assert client.get("/v1/knowledge/documents", headers=headers).json() == []
    assert client.get("/v1/knowledge/documents").status_code == 401


def test_one_tenants_key_never_sees_anothers_documents(client: TestClient) -> None:  # noqa: F811
    _, acme = new_tenant(client, "acme")
    _, other = new_tenant(client, "other")
    upload(client, acme, {"delivery.md": ARTICLES["delivery.md"]})
    assert client.get("/v1/knowledge/documents", headers=other).json() == []
    assert client.delete("/v1/knowledge/documents/delivery", headers=other).status_code == 404
