"""Preparing and verifying the base model (the real SmolLM2 checkpoint)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engines.base_model import (
    MANIFEST_NAME,
    ModelIntegrityError,
    ModelMissingError,
    cpu_has_native_bf16,
    find_packaged_gguf,
    prepare_base_model,
    verify_model_dir,
)
from supportloop.cli import app


def linked_copy(model_dir: Path, target: Path) -> Path:
    """A copy whose big weights file is a hard link (cheap) and small files are real copies."""
    target.mkdir()
    for path in model_dir.iterdir():
        if path.suffix == ".safetensors":
            os.link(path, target / path.name)
        else:
            (target / path.name).write_bytes(path.read_bytes())
    return target


def test_the_packaged_gguf_is_found_without_importing_its_package() -> None:
    gguf = find_packaged_gguf()
    assert gguf.suffix == ".gguf" and "SmolLM2-135M-Instruct" in gguf.name


def test_prepared_model_is_bf16_safetensors_with_a_chat_template(model_dir: Path) -> None:
    manifest = verify_model_dir(model_dir)
    assert manifest["base_model"] == "SmolLM2-135M-Instruct"
    assert "model.safetensors" in manifest["files"]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["dtype"] == "bfloat16"
    assert "<|im_start|>" in (model_dir / "chat_template.jinja").read_text()
    assert config["eos_token_id"] == 2  # <|im_end|>, so replies stop at the end of the turn


def test_prepared_tokenizer_round_trips_text_and_the_chat_template(model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    text = "Hello world, can I get 2 lattes?\nThanks!"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi there"}], add_generation_prompt=True, tokenize=False
    )
    assert prompt.endswith("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n")


def test_prepare_is_idempotent(model_dir: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    steps: list[str] = []
    assert prepare_base_model(model_dir, on_step=steps.append) == model_dir
    assert steps == ["already prepared"]
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def test_a_tampered_file_fails_verification(model_dir: Path, tmp_path: Path) -> None:
    copy = linked_copy(model_dir, tmp_path / "model")
    config = json.loads((copy / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelIntegrityError, match="does not match its sha256"):
        verify_model_dir(copy)


def test_pickled_weights_are_refused(model_dir: Path, tmp_path: Path) -> None:
    copy = linked_copy(model_dir, tmp_path / "model")
    (copy / "pytorch_model.bin").write_bytes(b"\x80\x04")
    with pytest.raises(ModelIntegrityError, match="pickled"):
        verify_model_dir(copy)


def test_a_missing_model_names_the_command_to_run(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match="supportloop model prepare"):
        verify_model_dir(tmp_path / "nothing-here")


def test_prepare_accepts_a_local_checkpoint_directory(model_dir: Path, tmp_path: Path) -> None:
    target = prepare_base_model(tmp_path / "from-dir", source=model_dir)
    manifest = verify_model_dir(target)
    assert manifest["source"] == str(model_dir)
    assert not list(tmp_path.glob(".from-dir.staging-*"))  # nothing left half-written


def test_cli_model_prepare_is_idempotent_and_serve_explains_a_missing_model(
    model_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"SUPPORTLOOP_MODEL_DIR": str(model_dir), "SUPPORTLOOP_VAR_DIR": str(tmp_path)}
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["model", "prepare"], env=env)
        assert result.exit_code == 0, result.output
        assert "base model ready" in result.output
        get_settings.cache_clear()
        missing = {**env, "SUPPORTLOOP_MODEL_DIR": str(tmp_path / "absent")}
        result = runner.invoke(app, ["serve"], env=missing)
        assert result.exit_code == 2
        assert "supportloop model prepare" in result.output
    finally:
        get_settings.cache_clear()


def test_cli_tenant_create_prints_a_working_api_key(tmp_path: Path) -> None:
    from core.crud.tenants import authenticate_api_key
    from core.db import create_db_engine, session_scope
    from core.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            ["tenant", "create", "acme", "--origin", "https://shop.example"],
            env={"SUPPORTLOOP_DATABASE_URL": url},
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    with session_scope(create_db_engine(url)) as session:
        tenant = authenticate_api_key(session=session, key=key)
        assert tenant is not None and tenant.allowed_origins == ["https://shop.example"]


def test_manifest_is_written_last(model_dir: Path) -> None:
    manifest = model_dir / MANIFEST_NAME
    newest_other = max(p.stat().st_mtime_ns for p in model_dir.iterdir() if p != manifest)
    assert manifest.stat().st_mtime_ns >= newest_other


def test_bf16_counts_as_native_only_on_cpus_with_avx512_bf16_or_amx() -> None:
    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags\t\t: sse avx2 amx_bf16 amx_tile\n")
    assert not cpu_has_native_bf16("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert not cpu_has_native_bf16("")
