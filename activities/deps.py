"""What activities share: the store, the settings and a Temporal client (to signal workflows)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from nurture.settings import Settings
from nurture.store import Store


@dataclass
class ActivityDeps:
    store: Store
    settings: Settings
    client: Client | None = None
