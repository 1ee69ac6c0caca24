"""Random tokens that are shown once and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets


def new_token(prefix: str) -> str:
    # 32 random bytes: far beyond brute force, so a fast hash is enough to store it.
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
