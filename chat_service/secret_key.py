"""The server's signing key: visitor tokens and console CSRF tokens are HMACs under it.

Set SUPPORTLOOP_SECRET_KEY in production (several workers must share it). Without it a random
key is generated once into var_dir/secret_key (mode 0600), so `make serve` needs no set-up and
visitor tokens survive restarts.
"""

from __future__ import annotations

import os
import secrets

from core.settings import Settings


def load_secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = settings.var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(staging, path)  # never replaces a key another process wrote first
        except FileExistsError:
            pass
        finally:
            staging.unlink()
    return path.read_text().strip().encode()
