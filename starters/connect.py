"""Connect to Temporal as configured: a local dev server, a self-hosted cluster (TLS optional)
or Temporal Cloud (API key or mTLS)."""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from nurture.errors import Unavailable
from nurture.settings import Settings


async def connect_temporal(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    elif settings.temporal_tls or settings.temporal_api_key:
        tls = True
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            tls=tls,
            api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
            data_converter=pydantic_data_converter,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise Unavailable(
            f"cannot reach Temporal at {settings.temporal_address} (namespace {settings.temporal_namespace}): {exc}. "
            "Start the embedded stack with `nurture dev`, or set NURTURE_TEMPORAL_ADDRESS."
        ) from None
