"""Build the record sources of a deployment from its configuration and settings."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx

from gateway.connectors.client_auth import ClientAuth, MutualTls, PrivateKeyJwt, connector_key
from gateway.connectors.hosted import HostedSource
from gateway.connectors.port import RecordSource
from gateway.connectors.registry import SourceRegistry, base_url
from gateway.connectors.rest import RestSource
from gateway.policies.compiled import CompiledPolicy
from gateway.policies.model import PolicyConfig, SourceAuth, SourceSystem
from gateway.settings import Settings
from gateway.store.records import RecordStore


def _client(settings: Settings, system: SourceSystem) -> tuple[httpx.AsyncClient, ClientAuth]:
    assert system.endpoint is not None
    url = base_url(system, settings.connector_urls)
    assert url is not None
    verify: ssl.SSLContext | bool = True
    if settings.connector_tls_ca is not None:
        verify = ssl.create_default_context(cafile=str(settings.connector_tls_ca))
    if system.endpoint.auth is SourceAuth.MTLS:
        if settings.connector_tls_cert is None or settings.connector_tls_key is None:
            raise ValueError(f"source '{system.id}' uses mTLS: set GATEWAY_CONNECTOR_TLS_CERT and _KEY")
        context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
        context.load_cert_chain(str(settings.connector_tls_cert), str(settings.connector_tls_key))
        return httpx.AsyncClient(verify=context), MutualTls()
    token_url = system.endpoint.token_url or f"{url.rstrip('/')}/token"
    auth = PrivateKeyJwt(settings.connector_client_id, connector_key(settings.key_dir), token_url)
    return httpx.AsyncClient(verify=verify), auth


def build_sources(
    settings: Settings,
    store: RecordStore,
    config: PolicyConfig,
    policy: Callable[[], CompiledPolicy],
) -> SourceRegistry:
    """Return the registry: the hosted store, and one REST connector per source with a URL here.

    `policy` returns the effective policy at the moment of asking (covenant ends moved by revocations).
    """
    oins = {o.id: o.oin for o in config.organisations}
    brokered: dict[str, RecordSource] = {}
    for system in config.sources:
        url = base_url(system, settings.connector_urls)
        if url is None:
            continue
        client, auth = _client(settings, system)
        brokered[system.id] = RestSource(
            system, url, auth, store.pseudonym, lambda org: oins.get(org, ""), settings.audit_origin, client
        )
    return SourceRegistry(HostedSource(store), brokered, config, policy)
