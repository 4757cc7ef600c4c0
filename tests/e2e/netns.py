"""A second host for the leader-election test: a network namespace with a veth link to this one.

The ansible-operator runtime binds fixed ports (127.0.0.1:5050, its proxy on localhost:8888), so a
second operator needs a network namespace of its own. The namespace reaches the API server through
a small TCP relay on the veth address (the API server itself listens on 127.0.0.1 only); the
kubeconfig keeps verifying the server certificate by naming 127.0.0.1 as the TLS server name.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

HOST_ADDR, PEER_ADDR = "10.231.0.1", "10.231.0.2"


def ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True, timeout=30)


@dataclass
class TcpRelay:
    """Forwards connections from (listen_host, port) to (target_host, port)."""

    listen: tuple[str, int]
    target: tuple[str, int]
    _server: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> TcpRelay:
        self._server = socket.create_server(self.listen, reuse_port=False)
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        return self

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._server:
            self._server.close()


@dataclass
class PeerHost:
    name: str = "dfop-peer"
    relay: TcpRelay | None = None

    def up(self, kubeconfig: Path, out: Path) -> Path:
        """Create the namespace and the link; return a kubeconfig usable inside it."""
        self.down()
        ip("netns", "add", self.name)
        ip("link", "add", "dfop-host", "type", "veth", "peer", "name", "dfop-peer", "netns", self.name)
        ip("addr", "add", f"{HOST_ADDR}/30", "dev", "dfop-host")
        ip("link", "set", "dfop-host", "up")
        for cmd in (["addr", "add", f"{PEER_ADDR}/30", "dev", "dfop-peer"], ["link", "set", "dfop-peer", "up"],
                    ["link", "set", "lo", "up"]):
            ip("-n", self.name, *cmd)
        config = json.loads(subprocess.run(["kubectl", "config", "view", "--raw", "-o", "json"],
                                           capture_output=True, text=True, check=True,
                                           env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"}).stdout)
        cluster = config["clusters"][0]["cluster"]
        port = urlparse(cluster["server"]).port or 443
        self.relay = TcpRelay((HOST_ADDR, port), ("127.0.0.1", port)).start()
        cluster["server"] = f"https://{HOST_ADDR}:{port}"
        cluster["tls-server-name"] = "127.0.0.1"
        out.write_text(json.dumps(config))
        out.chmod(0o600)
        return out

    def down(self) -> None:
        if self.relay:
            self.relay.stop()
            self.relay = None
        ip("link", "del", "dfop-host", check=False)
        ip("netns", "del", self.name, check=False)

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]
