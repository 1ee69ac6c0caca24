"""`supportloop eval run` on a slice of the coffee-orders corpus, with real adapters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.crud.adapters import switch_active
from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from supportloop.cli import app as cli
from tests.adapters import register_random_adapter
from tests.factories import make_tenant

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "coffee-orders"


@pytest.mark.slow
def test_the_report_compares_an_adapter_with_the_active_one_and_the_base(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import get_settings

    corpus = CORPUS / "conversations.jsonl"
    if not corpus.exists():
        pytest.skip(f"{corpus} is not there (../shared from the project root)")
    dataset = tmp_path / "slice.jsonl"
    dataset.write_text("".join(corpus.read_text().splitlines(keepends=True)[300:306]))
    url = f"sqlite:///{tmp_path / 'eval.db'}"
    db = create_db_engine(url)
    upgrade_database(db)
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    with session_scope(db) as session:
        for name, seed in (("acme-live", 1), ("acme-next", 2)):
            version = register_random_adapter(
                session, model_dir, tmp_path, tenant_id=tenant.id, name=name, seed=seed
            )
            if name == "acme-live":
                switch_active(session=session, tenant_id=tenant.id, adapter_id=version.id)  # type: ignore[arg-type]
    for key, value in {
        "SUPPORTLOOP_DATABASE_URL": url,
        "SUPPORTLOOP_VAR_DIR": str(tmp_path),
        "SUPPORTLOOP_MODEL_DIR": str(model_dir),
        "SUPPORTLOOP_FINETUNE_EVAL_MAX_NEW_TOKENS": "12",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        out = tmp_path / "report"
        result = CliRunner().invoke(
            cli,
            ["eval", "run", "--adapter", "acme-next", "--dataset", str(dataset)]
            + ["--generations", "4", "--out", str(out)],
        )
        missing = CliRunner().invoke(
            cli, ["eval", "run", "--adapter", "nope", "--dataset", str(dataset)]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert missing.exit_code == 2 and "no adapter version named 'nope'" in missing.output
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["base", "active (acme-live)", "acme-next"]
    for metrics in report["models"].values():
        assert metrics["loss"] > 0 and metrics["perplexity"] > 1
        assert 0 <= metrics["rouge_l"] <= 1 and metrics["bleu"] >= 0
        assert metrics["reply_chars"] > 0 and 0 <= metrics["refusal_rate"] <= 1
    # Random adapters change the model: the three are not the same model under three names.
    assert len({m["loss"] for m in report["models"].values()}) == 3
    page = (out / "report.html").read_text()
    assert "acme-next" in page and "data:image/png;base64," in page
    assert len(report["samples"]) == 4
