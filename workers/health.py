"""Health and Prometheus metrics endpoint of a worker process."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nurture.settings import Settings


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/healthz"):
            body, ctype = b'{"ok": true}', "application/json"
        elif self.path.startswith("/metrics"):
            body, ctype = generate_latest(), CONTENT_TYPE_LATEST
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:  # keep probes out of the logs
        pass


def start_health_server(settings: Settings) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((settings.worker_metrics_host, settings.worker_metrics_port), _Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
