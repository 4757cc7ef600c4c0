"""Trino auth: basic, and Keycloak OAuth2 (static token, password grant refreshed before expiry,
client credentials), proven by a recording proxy in front of the real Trino and a local OpenID
token endpoint. Trino itself stays unauthenticated; the proxy shows what header reached it."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping

import pytest
from dataflow_processor.connectors.base import ConnectorContext
from dataflow_processor.connectors.keycloak import TokenError, TokenProvider
from dataflow_processor.connectors.trino import TrinoSink
from dataflow_processor.records import Record
from dataflow_processor.spec.connectors import Keycloak, TrinoSinkConfig

from tests.integration.conftest import trino_run
from tests.integration.http_doubles import RecordingProxy, TokenEndpoint

pytestmark = pytest.mark.integration


def keycloak(endpoint: TokenEndpoint, **fields: str) -> dict[str, str]:
    return {"serverURL": endpoint.url, "realm": endpoint.realm, "clientID": endpoint.client_id, **fields}


async def write_rows(
    proxy: RecordingProxy, catalog: str, schema: str, auth: Mapping[str, object], ids: list[int], pause: float = 0
) -> TrinoSink:
    config = TrinoSinkConfig.model_validate(
        {"serverURL": proxy.url, "catalog": catalog, "schema": schema, "table": "t", "autoCreateTable": True, **auth}
    )
    sink = TrinoSink(config, ConnectorContext("it", "auth", "sink"))
    await sink.connect()
    for i in ids:
        result = await sink.write([Record({"id": i})])
        assert result.failures == []
        await asyncio.sleep(pause)
    await sink.close()
    return sink


def table_ids(url: str, catalog: str, schema: str) -> list[int]:
    return [r[0] for r in trino_run(url, f'SELECT id FROM "{catalog}"."{schema}"."t" ORDER BY id')]


async def test_static_token_is_sent_as_bearer(
    trino_url: str, trino_catalog: str, trino_schema: str, trino_proxy: RecordingProxy
) -> None:
    await write_rows(trino_proxy, trino_catalog, trino_schema, {"keycloak": {"token": "static-abc"}}, [1, 2])
    headers = trino_proxy.authorizations()
    assert len(headers) >= 6  # SELECT 1, columns, CREATE, columns, 2 INSERTs, each with nextUri polls
    assert set(headers) == {"Bearer static-abc"}
    assert table_ids(trino_url, trino_catalog, trino_schema) == [1, 2]


async def test_password_grant_refreshes_before_expiry(
    trino_url: str,
    trino_catalog: str,
    trino_schema: str,
    trino_proxy: RecordingProxy,
    token_endpoint: TokenEndpoint,
) -> None:
    token_endpoint.expires_in = 2  # refreshed after 1.6 s
    auth = {"keycloak": keycloak(token_endpoint, username="alice", password="wonderland")}
    started = time.monotonic()
    sink = await write_rows(trino_proxy, trino_catalog, trino_schema, auth, list(range(6)), pause=0.8)
    elapsed = time.monotonic() - started
    grants = [g.grant_type for g in token_endpoint.grants]
    assert grants[0] == "password"
    assert grants[1:] == ["refresh_token"] * (len(grants) - 1)
    assert len(grants) >= 2 and len(grants) <= elapsed / 1.6 + 1
    issued = [g.issued for g in token_endpoint.grants]
    seen = trino_proxy.authorizations()
    assert all(h is not None and h.startswith("Bearer ") for h in seen)
    assert {h.removeprefix("Bearer ") for h in seen if h} == set(issued)  # every token was used, no other
    # the refreshed token was requested with the refresh token of the previous grant
    first, second = token_endpoint.grants[0], token_endpoint.grants[1]
    assert second.form["refresh_token"] == "ref-" + first.issued.rsplit("-", 1)[1]
    assert sink.client is not None and sink.client.token_provider is not None
    assert table_ids(trino_url, trino_catalog, trino_schema) == list(range(6))


async def test_client_credentials(
    trino_url: str,
    trino_catalog: str,
    trino_schema: str,
    trino_proxy: RecordingProxy,
    token_endpoint: TokenEndpoint,
) -> None:
    auth = {"keycloak": keycloak(token_endpoint, clientSecret=token_endpoint.client_secret)}
    await write_rows(trino_proxy, trino_catalog, trino_schema, auth, [7])
    assert [(g.grant_type, g.form.get("client_secret")) for g in token_endpoint.grants] == [
        ("client_credentials", "s3cret")
    ]
    assert set(trino_proxy.authorizations()) == {"Bearer tok-client_credentials-1"}
    assert table_ids(trino_url, trino_catalog, trino_schema) == [7]


async def test_basic_auth_header(
    trino_url: str, trino_catalog: str, trino_schema: str, trino_proxy: RecordingProxy
) -> None:
    """Trino answers 401 to a password over plain HTTP, so the proxy keeps the header (recorded) to itself."""
    trino_proxy.strip_authorization = True
    auth = {"basicAuth": {"username": "bob", "password": "pa:ss"}}
    await write_rows(trino_proxy, trino_catalog, trino_schema, auth, [3])
    expected = "Basic " + base64.b64encode(b"bob:pa:ss").decode()
    assert set(trino_proxy.authorizations()) == {expected}
    assert {s.headers.get("X-Trino-User") for s in trino_proxy.seen} == {"bob"}
    assert table_ids(trino_url, trino_catalog, trino_schema) == [3]


async def test_no_auth_sends_no_header(
    trino_url: str, trino_catalog: str, trino_schema: str, trino_proxy: RecordingProxy
) -> None:
    await write_rows(trino_proxy, trino_catalog, trino_schema, {}, [4])
    assert set(trino_proxy.authorizations()) == {None}
    assert {s.headers.get("X-Trino-User") for s in trino_proxy.seen} == {"dataflow-operator"}


def test_refused_refresh_falls_back_to_password_and_bad_credentials_fail(token_endpoint: TokenEndpoint) -> None:
    now = [0.0]
    provider = TokenProvider(
        Keycloak.model_validate(keycloak(token_endpoint, username="alice", password="wonderland")),
        clock=lambda: now[0],
    )
    assert provider.token() == "tok-password-1"
    assert provider.token() == "tok-password-1"  # cached until 80 % of 300 s
    now[0] = 241
    assert provider.token() == "tok-refresh_token-2"
    token_endpoint._refresh_tokens.clear()  # refresh token revoked
    now[0] = 500
    assert provider.token() == "tok-password-3"
    assert provider.grants == ["password", "refresh_token", "password"]

    wrong = TokenProvider(Keycloak.model_validate(keycloak(token_endpoint, username="alice", password="nope")))
    with pytest.raises(TokenError, match="password grant: HTTP 401"):
        wrong.token()
    with pytest.raises(ValueError, match="requires either token"):
        TokenProvider(Keycloak.model_validate(keycloak(token_endpoint)))
