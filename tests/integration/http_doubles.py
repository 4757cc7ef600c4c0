"""Small local HTTP servers the Trino tests put around the real Trino.

* :class:`RecordingProxy` forwards every request to the real Trino and records method, path and
  headers, so a test can prove what reached "Trino" (the ``Authorization`` header). Trino's answers
  carry absolute ``nextUri`` links to itself; the proxy rewrites them to its own address so the
  client keeps talking through it. ``fail_statements`` makes the next N ``POST /v1/statement``
  answer 503 (a transient failure) without forwarding. ``strip_authorization`` records the header
  but does not forward it (Trino refuses passwords over plain HTTP; this proves what the client sent).
  ``delay_statements`` holds each ``POST /v1/statement`` that long (a slow server, for timeouts).
* :class:`TokenEndpoint` is an OpenID token endpoint (Keycloak's path
  ``/realms/<realm>/protocol/openid-connect/token``) issuing opaque tokens with a chosen lifetime for
  the password, refresh_token and client_credentials grants; it records every grant.

Both listen on 127.0.0.1 on a free port, in a daemon thread; ``close()`` stops them.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy: RecordingProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        drop = HOP_HEADERS | ({"authorization"} if proxy.strip_authorization else set())
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        with proxy.lock:
            proxy.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
            fail = self.command == "POST" and self.path.startswith("/v1/statement") and proxy.fail_statements > 0
            if fail:
                proxy.fail_statements -= 1
                proxy.failed += 1
        if proxy.delay_statements and self.command == "POST" and self.path.startswith("/v1/statement"):
            time.sleep(proxy.delay_statements)
        if fail:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = requests.request(
            self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=60, allow_redirects=False
        )
        content = upstream.content.replace(proxy.upstream.encode(), proxy.url.encode())
        self.send_response(upstream.status_code)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_HEADERS:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _forward


class RecordingProxy(_Server):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.fail_statements = 0
        self.failed = 0
        self.strip_authorization = False
        self.delay_statements = 0.0  # seconds to hold each POST /v1/statement before forwarding
        super().__init__(_ProxyHandler)

    def authorizations(self) -> list[str | None]:
        with self.lock:
            return [s.headers.get("Authorization") for s in self.seen]


@dataclass
class Grant:
    grant_type: str
    form: dict[str, str]
    issued: str


class _TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        endpoint: TokenEndpoint = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        status, body = endpoint.answer(self.path, form)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class TokenEndpoint:
    realm: str = "dataflow"
    client_id: str = "trino-client"
    client_secret: str = "s3cret"
    username: str = "alice"
    password: str = "wonderland"
    expires_in: float = 300
    grants: list[Grant] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._counter = itertools.count(1)
        self._refresh_tokens: set[str] = set()
        self._server = _Server(_TokenHandler)
        self._server.httpd.owner = self  # type: ignore[attr-defined]
        self.url = self._server.url

    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if path != f"/realms/{self.realm}/protocol/openid-connect/token":
            return 404, {"error": "not_found"}
        grant = form.get("grant_type", "")
        if form.get("client_id") != self.client_id:
            return 401, {"error": "invalid_client"}
        if grant == "password":
            if (form.get("username"), form.get("password")) != (self.username, self.password):
                return 401, {"error": "invalid_grant"}
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self._refresh_tokens:
                return 400, {"error": "invalid_grant"}
        elif grant == "client_credentials":
            if form.get("client_secret") != self.client_secret:
                return 401, {"error": "unauthorized_client"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        n = next(self._counter)
        token = f"tok-{grant}-{n}"
        self.grants.append(Grant(grant, form, token))
        body: dict[str, object] = {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        if grant in ("password", "refresh_token"):
            refresh = f"ref-{n}"
            self._refresh_tokens.add(refresh)
            body["refresh_token"] = refresh
        return 200, body

    def close(self) -> None:
        self._server.close()
