"""One settings object, read from ``NURTURE_*`` environment variables and an optional ``.env``.

Secrets (API keys, tokens, the encryption key) live only here — read from the environment or a
secrets file — and never travel in workflow inputs, histories or logs. Definitions that need a
secret name it (``secret: crm_webhook_token``) and activities resolve the name at run time.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NURTURE_", env_file=".env", env_file_encoding="utf-8", extra="ignore",
        env_ignore_empty=True,  # compose passes unset optional values as empty strings
        populate_by_name=True,
    )

    home: Path = Field(default=Path(".nurture"), description="State folder of the embedded stack")

    # Temporal
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None
    task_queue: str = "nurture"
    temporal_ui_port: int = 8233

    # Store
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the state folder"
    )

    # Email providers. Real providers are used only with live=True and credentials set.
    live: bool = False
    sendgrid_api_key: SecretStr | None = None
    sendgrid_base_url: str | None = Field(default=None, description="Default: local endpoint, or SendGrid when live")
    gmail_api_endpoint: str | None = Field(default=None, description="Default: local endpoint, or Google when live")
    google_token_uri: str | None = Field(default=None, description="Default: local endpoint, or Google when live")
    google_client_id: str = "nurture-local"
    google_client_secret: SecretStr | None = None
    inbox_poll_seconds_setting: float | None = Field(
        default=None, alias="NURTURE_INBOX_POLL_SECONDS",
        description="How often each inbox watcher reads Gmail history; default 30 s live, 2 s locally",
    )
    gmail_search_grace_seconds: float = Field(
        default=180.0, description="How long a retried send looks for its message in Gmail search before sending again"
    )
    sendgrid_port: int = 8025
    gmail_port: int = 8026

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_tokens: list[str] = Field(default_factory=list)
    public_base_url: str | None = Field(
        default=None, description="Base URL contacts reach (unsubscribe links); default: the API URL"
    )

    meetings_webhook_secret: SecretStr | None = Field(default=None, description="Shared secret of the meetings webhook")

    # Worker
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = 9464
    worker_sdk_metrics_port: int = 9465
    worker_max_cached_workflows: int = 2000
    worker_activity_threads: int = 32

    # Account
    timezone: str = "UTC"
    country: str = "US"

    # Secrets
    secret_key: SecretStr = SecretStr("nurture-dev-insecure-secret-change-me")
    encryption_key: SecretStr | None = None
    secrets_file: Path | None = None

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: Any) -> Any:
        # Accept "a,b" in the environment as well as a JSON list.
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'nurture.db').resolve()}"

    @property
    def inbox_poll_seconds(self) -> float:
        if self.inbox_poll_seconds_setting is not None:
            return self.inbox_poll_seconds_setting
        return 30.0 if self.live else 2.0

    @property
    def sendgrid_url(self) -> str:
        if self.sendgrid_base_url:
            return self.sendgrid_base_url.rstrip("/")
        return "https://api.sendgrid.com" if self.live else f"http://127.0.0.1:{self.sendgrid_port}"

    @property
    def gmail_url(self) -> str:
        if self.gmail_api_endpoint:
            return self.gmail_api_endpoint.rstrip("/")
        return "https://gmail.googleapis.com" if self.live else f"http://127.0.0.1:{self.gmail_port}"

    @property
    def token_uri(self) -> str:
        if self.google_token_uri:
            return self.google_token_uri
        return "https://oauth2.googleapis.com/token" if self.live else f"{self.gmail_url}/token"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def unsubscribe_base_url(self) -> str:
        return (self.public_base_url or self.api_url).rstrip("/")

    @property
    def temporal_ui_url(self) -> str:
        return f"http://127.0.0.1:{self.temporal_ui_port}"

    def secret(self, name: str) -> str:
        """Resolve a named secret: ``NURTURE_SECRET_<NAME>`` first, then the secrets file (JSON).

        Raises KeyError with a message that says where the secret was looked for.
        """
        import os

        env_name = f"NURTURE_SECRET_{name.upper()}"
        if env_name in os.environ:
            return os.environ[env_name]
        if self.secrets_file and self.secrets_file.exists():
            data = json.loads(self.secrets_file.read_text())
            if name in data:
                return str(data[name])
        raise KeyError(
            f"secret {name!r} is not set: define {env_name} or add it to the secrets file "
            f"({self.secrets_file or 'NURTURE_SECRETS_FILE is unset'})"
        )


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
