"""Prometheus metrics of the agent, on their own registry (tests can make several).

The exporter is prometheus-client's WSGI app on the standard library's threading WSGI server,
started here rather than with start_http_server(): that one's server thread wakes every 0.5 s
to check for a shutdown that never comes, which was most of an idle agent's remaining system
calls (User-Mode Linux, strace). Here the server waits for a request with no timeout.
"""

from __future__ import annotations

import socket
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from ovnbgp.model.claims import WAITING_UP
from ovnbgp.model.records import ExposureKind


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.exposures = Gauge("ovnbgp_exposures", "Prefixes exposed on this node, by kind",
                               ["kind"], registry=r)
        self.reconcile_seconds = Histogram(
            "ovnbgp_reconcile_duration_seconds", "Wall time of one reconcile, by trigger",
            ["trigger"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.changes = Counter("ovnbgp_changes_applied_total", "Changes applied, by target and op",
                               ["target", "op"], registry=r)
        self.apply_errors = Counter("ovnbgp_apply_errors_total", "Changes that failed, by target",
                                    ["target"], registry=r)
        self.events = Counter("ovnbgp_events_total", "Southbound events seen, by name",
                              ["event"], registry=r)
        self.waiting = Gauge("ovnbgp_waiting", "Rows whose exposures wait, by reason (port-up: "
                             "bound here, up=false)", ["reason"], registry=r)
        self.frr_reloads = Counter("ovnbgp_frr_reloads_total", "FRR config reloads, by result",
                                   ["result"], registry=r)
        self.frr_restarts = Counter("ovnbgp_frr_restarts_detected_total",
                                    "FRR restarts detected (config re-applied)", registry=r)
        self.db_connected = Gauge("ovnbgp_db_connected", "1 when the DB connection is up",
                                  ["db"], registry=r)
        self.last_sync = Gauge("ovnbgp_last_sync_timestamp_seconds",
                               "Unix time of the last successful reconcile", registry=r)
        self.bridge_data_held = Gauge(
            "ovnbgp_bridge_data_held", "Reasons the bridge data (ovn-bridge-mappings, bridges) is "
            "unusable; while > 0 what is in place for unmapped bridges is held", registry=r)
        for kind in ExposureKind:
            self.exposures.labels(kind.value).set(0)
        self.waiting.labels(WAITING_UP).set(0)

    def serve(self, listen: str) -> WSGIServer:
        """Start the HTTP exporter on "IP:PORT" (validated by config) in a daemon thread."""
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingMixIn, WSGIServer):
            address_family = family
            daemon_threads = True

        server = make_server(host, int(port), make_wsgi_app(self.registry), Server,
                             handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": None},
                         name="metrics-http", daemon=True).start()
        return server


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass
