"""The processor's HTTP endpoints: ``/metrics`` (Prometheus), ``/livez`` and ``/readyz``.

* ``/livez`` answers 200 while the event loop serves requests (a wedged loop fails the probe).
* ``/readyz`` answers 200 once every connector is connected and the pipeline runs, 503 before that
  and while stopping.
* ``/metrics`` is the text exposition of the pipeline's registry.

Port 9090 by default (``--health-port`` / ``HEALTH_PORT``), on all interfaces (the kubelet probes
the pod IP).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from dataflow_processor.metrics import Metrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    def __init__(self, metrics: Metrics, is_ready: Callable[[], bool], host: str = "0.0.0.0", port: int = 9090) -> None:
        self.metrics = metrics
        self.is_ready = is_ready
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.is_ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
