"""Writing directories so that a crash never leaves one that looks complete but is not.

The base model, published adapters and training checkpoints are all written the same way: into
a staging sibling, hashed, fsynced file by file, then renamed into place with the parent
directory fsynced, so the rename itself survives a power cut.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (a rename is only durable once its parent is synced)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(root: Path) -> None:
    """Every file under ``root``, then every directory, ``root`` last."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        fsync_dir(path)
    fsync_dir(root)


def replace_dir(staging: Path, final: Path) -> None:
    """Move a fully written and synced ``staging`` directory to ``final``, replacing what was
    there; the old copy is kept aside until the new one is in place."""
    retired = final.parent / f".{final.name}.old-{os.getpid()}"
    shutil.rmtree(retired, ignore_errors=True)
    if final.exists():
        final.rename(retired)
    staging.rename(final)
    fsync_dir(final.parent)
    shutil.rmtree(retired, ignore_errors=True)
