"""A small Kubernetes REST client for the role's own modules, action plugins and lookup.

Why not the `kubernetes` package: importing it costs 0.5-0.7 s of CPU (thousands of generated model
classes) in every process that does, and every reconcile is fresh processes. The role needs a
handful of JSON requests, so this reads the kubeconfig the runtime hands it (the ansible-operator
proxy: plain HTTP, the owner encoded in the basic-auth user name) or any ordinary kubeconfig (CA,
client certificate, token, basic auth) or the in-cluster service account, and speaks HTTP with the
standard library.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


class KubeError(Exception):
    """A failed request: ``status`` is the HTTP status (0: no answer), ``body`` the server's Status."""

    def __init__(self, status: int, reason: str, body: Any = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body


class TaskFailed(Exception):
    """The task fails with ``msg``; ``extra`` goes into the task result beside it."""

    def __init__(self, msg: str, **extra: Any) -> None:
        super().__init__(msg)
        self.msg = msg
        self.extra = extra


def _b64_file(data: str, suffix: str) -> str:
    with tempfile.NamedTemporaryFile(prefix="dataflow-kube-", suffix=suffix, delete=False) as handle:
        handle.write(base64.b64decode(data))
    return handle.name


class KubeClient:
    """Requests against one API server, authenticated the way its kubeconfig says."""

    def __init__(self, kubeconfig: str | None = None, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.headers: dict[str, str] = {"Accept": "application/json"}
        self.context: ssl.SSLContext | None = None
        path = kubeconfig or os.environ.get("K8S_AUTH_KUBECONFIG") or os.environ.get("KUBECONFIG")
        if path:
            self._from_kubeconfig(path.split(os.pathsep)[0])
        else:
            self._in_cluster()

    # ------------------------------------------------------------------ configuration

    def _from_kubeconfig(self, path: str) -> None:
        import yaml  # a dependency of the kubernetes.core collection, present wherever it runs

        with open(path, encoding="utf-8") as handle:
            config = yaml.safe_load(handle) or {}
        name = config.get("current-context")
        context = next((c["context"] for c in config.get("contexts", []) if c["name"] == name), None)
        if context is None:
            raise KubeError(0, f"kubeconfig {path}: no current context")
        cluster = next(c["cluster"] for c in config.get("clusters", []) if c["name"] == context["cluster"])
        user = next((u.get("user") or {} for u in config.get("users", []) if u["name"] == context.get("user")), {})
        base = os.path.dirname(os.path.abspath(path))
        parsed = urllib.parse.urlsplit(cluster["server"])
        # The proxy's kubeconfig also puts the user into the URL; urllib wants it in a header.
        self.server = urllib.parse.urlunsplit(parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[-1])).rstrip("/")
        if parsed.scheme == "https":
            if cluster.get("insecure-skip-tls-verify"):
                self.context = ssl.create_default_context()
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
            elif cluster.get("certificate-authority-data"):
                self.context = ssl.create_default_context(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
            elif cluster.get("certificate-authority"):
                self.context = ssl.create_default_context(
                    cafile=os.path.join(base, cluster["certificate-authority"]))
            else:
                self.context = ssl.create_default_context()
            generated: list[str] = []  # client certificate/key data written to files for ssl, removed after

            def pem(path_field: str, data_field: str, suffix: str) -> str | None:
                if user.get(data_field):
                    generated.append(_b64_file(user[data_field], suffix))
                    return generated[-1]
                return os.path.join(base, user[path_field]) if user.get(path_field) else None

            try:
                cert = pem("client-certificate", "client-certificate-data", ".crt")
                key = pem("client-key", "client-key-data", ".key")
                if cert and key:
                    self.context.load_cert_chain(cert, key)
            finally:
                for name in generated:
                    os.unlink(name)
        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(os.path.join(base, user["tokenFile"]), encoding="utf-8") as handle:
                token = handle.read().strip()
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user.get("username"):
            pair = f"{user['username']}:{user.get('password', '')}".encode()
            self.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()

    def _in_cluster(self) -> None:
        host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise KubeError(0, "no kubeconfig (K8S_AUTH_KUBECONFIG, KUBECONFIG) and not in a cluster")
        self.server = f"https://{host}:{port}" if ":" not in host else f"https://[{host}]:{port}"
        self.context = ssl.create_default_context(cafile=f"{SERVICE_ACCOUNT}/ca.crt")
        with open(f"{SERVICE_ACCOUNT}/token", encoding="utf-8") as handle:
            self.headers["Authorization"] = f"Bearer {handle.read().strip()}"

    # ------------------------------------------------------------------ requests

    def request(self, method: str, path: str, body: Any = None, *, content_type: str = "application/json",
                query: dict[str, str] | None = None, accept: str | None = None) -> Any:
        """Send one request; return the decoded JSON answer or raise :class:`KubeError`."""
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if accept:
            headers["Accept"] = accept
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail = json.loads(raw)
            except ValueError:
                detail = raw.decode(errors="replace")
            reason = detail.get("message", exc.reason) if isinstance(detail, dict) else exc.reason
            raise KubeError(exc.code, str(reason), detail) from None
        except (urllib.error.URLError, OSError) as exc:
            raise KubeError(0, f"{method} {path}: {exc}") from None
        return json.loads(raw) if raw else {}

    def watch(self, path: str, query: dict[str, str], accept: str | None = None,
              timeout: float = 330.0) -> Iterator[dict[str, Any]]:
        """The events of one watch request (``?watch=1``), decoded, until the server ends it."""
        url = self.server + path + "?" + urllib.parse.urlencode({**query, "watch": "1"})
        headers = dict(self.headers)
        if accept:
            headers["Accept"] = accept
        req = urllib.request.Request(url, method="GET", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.context) as answer:
                for line in answer:
                    if line.strip():
                        yield json.loads(line)
        except urllib.error.HTTPError as exc:
            raise KubeError(exc.code, str(exc.reason)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise KubeError(0, f"watch {path}: {exc}") from None


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None,
                  subresource: str | None = None) -> str:
    """``/api/v1/namespaces/ns/configmaps/name`` or ``/apis/group/version/…`` for a resource."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [prefix]
    if namespace:
        parts.append(f"namespaces/{urllib.parse.quote(namespace)}")
    parts.append(plural)
    if name:
        parts.append(urllib.parse.quote(name))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
