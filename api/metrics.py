"""Prometheus metrics of one app instance (its own registry, so tests can build many apps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "lotline_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lotline_http_request_seconds",
            "HTTP request duration",
            ["route"],
            registry=self.registry,
        )
        self.open_tasks = Gauge("lotline_open_tasks", "Open human tasks", registry=self.registry)
        self.overdue_tasks = Gauge(
            "lotline_overdue_tasks", "Open human tasks past their due time", registry=self.registry
        )
