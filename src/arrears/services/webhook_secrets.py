"""Webhook signing secrets, encrypted at rest (docs/webhooks.md, "Secrets").

A secret is stored as a Fernet token (AES-128-CBC and HMAC-SHA256, `cryptography`)
under a key that is not in the database: `ARREARS_WEBHOOKS_SECRETS_KEY`, one or more
Fernet keys separated by commas (the first encrypts, every one decrypts, so keys can be
rotated). Without it the key is kept in a file (`ARREARS_WEBHOOKS_SECRETS_KEY_FILE`,
`arrears-webhooks.key` beside the default database), made with mode 0600 the first
time a secret is stored or read: `make run` needs no setup, and a dump of the database
alone still signs nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["SecretBox", "SecretsUnreadable"]


class SecretsUnreadable(RuntimeError):
    """A stored secret was encrypted under a key this process does not have."""


class SecretBox:
    """Encrypts and decrypts webhook secrets under the configured key(s)."""

    def __init__(self, keys: str | None = None, *, key_file: str | Path | None = None) -> None:
        if not keys and key_file is None:
            raise ValueError("a SecretBox needs keys or a key file")
        self._keys = keys
        self._key_file = Path(key_file) if key_file is not None else None
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()

    def seal(self, secret: str) -> bytes:
        return self._cipher().encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._cipher().decrypt(sealed).decode()
        except InvalidToken:
            raise SecretsUnreadable(
                "a webhook secret was encrypted under another key than "
                "ARREARS_WEBHOOKS_SECRETS_KEY (or the key file) holds"
            ) from None

    def _cipher(self) -> MultiFernet:
        with self._lock:
            if self._fernet is None:
                keys = self._keys or self._read_or_make_key_file()
                self._fernet = MultiFernet([Fernet(key.strip()) for key in keys.split(",")])
            return self._fernet

    def _read_or_make_key_file(self) -> str:
        path = self._key_file
        assert path is not None  # noqa: S101 (the constructor made sure)
        if not path.exists():
            # Written aside, then linked into place: of two processes starting together,
            # one key wins whole and both read it; no one reads a half-written file.
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(Fernet.generate_key() + b"\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()
