"""Encrypting provider API keys at rest (Fernet: AES-128-CBC with an HMAC).

The key is ASSAY_SECRET_KEY, else one generated on first use into ``$ASSAY_HOME/secret.key``
with mode 0600. A copy of the database alone does not reveal a provider key.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from assay.errors import ConfigError
from assay.settings import Settings

KEY_FILE = "secret.key"


def _key_file(home: Path) -> bytes:
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting at once agree on the one that won.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class SecretBox:
    """Encrypts and decrypts the connections' API keys."""

    def __init__(self, settings: Settings) -> None:
        raw = settings.secret_key.encode() if settings.secret_key else _key_file(settings.home)
        try:
            self._fernet = Fernet(raw)
        except ValueError:
            raise ConfigError(
                "ASSAY_SECRET_KEY is not a Fernet key (32 url-safe base64-encoded bytes); make "
                'one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ConfigError(
                "a connection's API key cannot be decrypted with this server's secret key: "
                "give every server and worker the same ASSAY_SECRET_KEY (or secret.key file), "
                "or enter the key again"
            ) from None


def last_four(secret: str) -> str:
    return secret[-4:] if len(secret) >= 8 else ""
