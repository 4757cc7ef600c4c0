"""OAuth2 bearer tokens from Keycloak (or any OpenID token endpoint) for the Trino connector.

One :class:`TokenProvider` per connector, chosen from the ``keycloak`` block (the choice and its
fields are the ones docs/compatibility.md lists for Trino):

* ``token`` set → **static**: used as it is, never refreshed.
* ``username`` + ``password`` → **password grant**; the token is refreshed with the
  ``refresh_token`` grant once 80 % of its lifetime (``expires_in``) has passed, so a request never
  carries a token about to expire. A failed refresh (refresh token expired or revoked) falls back to
  a new password grant.
* only ``clientSecret`` → **client-credentials grant**, fetched again at 80 % of its lifetime.

The endpoint is ``{serverURL}/realms/{realm}/protocol/openid-connect/token`` (form-encoded POST,
``client_id`` and, when set, ``client_secret`` in the body). The Trino client is synchronous (it
runs in worker threads), so the provider is synchronous and thread-safe: :meth:`token` returns a
valid token, fetching one under a lock when needed. :class:`BearerAuth` plugs it into a
``requests`` session so **every** HTTP request (``/v1/statement`` and each ``nextUri``) carries
``Authorization: Bearer <current token>``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import requests
import requests.auth

from dataflow_processor.spec.connectors import Keycloak

REFRESH_AT = 0.8  # fraction of the token lifetime after which a new one is fetched
DEFAULT_LIFETIME = 300.0  # when the endpoint does not say (expires_in missing)


class TokenError(Exception):
    """The token endpoint refused or could not be reached; the message says which grant."""


def token_endpoint(server_url: str, realm: str) -> str:
    return f"{server_url.rstrip('/')}/realms/{realm}/protocol/openid-connect/token"


class TokenProvider:
    """Hands out a valid access token; see the module docstring for the three modes."""

    def __init__(
        self,
        config: Keycloak,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self.static_token = config.token or None
        self.client_id = config.client_id or ""
        self.client_secret = config.client_secret or None
        self.username = config.username or None
        self.password = config.password or None
        if self.static_token:
            self.mode = "static"
        elif self.username and self.password:
            self.mode = "password"
        elif self.client_secret:
            self.mode = "client_credentials"
        else:
            raise ValueError("keycloak requires either token, username/password, or clientSecret")
        if self.mode != "static":
            if not config.server_url or not config.realm:
                raise ValueError(f"keycloak {self.mode} grant needs serverURL and realm")
            self.url = token_endpoint(config.server_url, config.realm)
        self._session = session or requests.Session()
        self._clock = clock
        self._timeout = timeout
        self._lock = threading.Lock()
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0
        self.grants: list[str] = []  # grant types used, in order (observability and tests)

    def token(self) -> str:
        if self.static_token:
            return self.static_token
        with self._lock:
            if self._access is None or self._clock() >= self._renew_at:
                self._renew()
            assert self._access is not None
            return self._access

    def invalidate(self) -> None:
        """Forget the current access token (e.g. after a 401) so the next call fetches one."""
        with self._lock:
            self._access = None

    def _renew(self) -> None:
        if self.mode == "password" and self._refresh is not None:
            try:
                self._grant({"grant_type": "refresh_token", "refresh_token": self._refresh})
                return
            except TokenError:
                self._refresh = None  # expired or revoked: log in again
        if self.mode == "password":
            self._grant({"grant_type": "password", "username": self.username, "password": self.password})
        else:
            self._grant({"grant_type": "client_credentials"})

    def _grant(self, form: dict[str, Any]) -> None:
        form = {**form, "client_id": self.client_id}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        grant = form["grant_type"]
        started = self._clock()
        try:
            response = self._session.post(self.url, data=form, timeout=self._timeout)
        except requests.RequestException as exc:
            raise TokenError(f"keycloak {grant} grant: {exc}") from exc
        if response.status_code != 200:
            raise TokenError(f"keycloak {grant} grant: HTTP {response.status_code}: {response.text[:200]}")
        body = response.json()
        access = body.get("access_token")
        if not access:
            raise TokenError(f"keycloak {grant} grant: no access_token in the response")
        lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME)
        self._access = access
        self._refresh = body.get("refresh_token") or (self._refresh if grant == "refresh_token" else None)
        self._renew_at = started + REFRESH_AT * lifetime
        self.grants.append(grant)


class BearerAuth(requests.auth.AuthBase):
    """``requests`` auth that sets ``Authorization: Bearer`` from a provider on every request."""

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.provider.token()}"
        return request
