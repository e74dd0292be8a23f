"""Encryption at rest for stored grants (OAuth tokens), with Fernet and NURTURE_ENCRYPTION_KEY."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from nurture.errors import NurtureError
from nurture.settings import Settings


def _fernet(settings: Settings) -> Fernet:
    if settings.encryption_key is None:
        raise NurtureError(
            "NURTURE_ENCRYPTION_KEY is not set; generate one with "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        )
    key = settings.encryption_key.get_secret_value().encode()
    try:
        return Fernet(key)
    except ValueError:
        # Accept any passphrase by deriving a Fernet key from it.
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key).digest()))


def encrypt(plaintext: str, settings: Settings) -> str:
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt(token: str, settings: Settings) -> str:
    try:
        return _fernet(settings).decrypt(token.encode()).decode()
    except InvalidToken:
        raise NurtureError("stored credentials cannot be decrypted: NURTURE_ENCRYPTION_KEY changed; reconnect the inbox") from None
