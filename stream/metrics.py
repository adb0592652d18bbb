"""Every Prometheus metric of the service, on an injected registry.

The loop never touches a metric per event: at most once a second it hands a plain snapshot of the
pipeline to :meth:`ServiceMetrics.publish`, and a custom collector turns the latest snapshot into
metric families when Prometheus scrapes. Labels are bounded (classes, reasons, detectors, metric
names); every known label value (e.g. each dead-letter reason) is present from the start.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PREFIX = "skewstream"

# The contract: every series this module exports (histograms add _bucket/_sum/_count, counters
# _total). Dashboards and alert rules may use only these; tests keep them honest both ways.
METRIC_NAMES = (
    "skewstream_events_scored_total",
    "skewstream_events_total",
    "skewstream_alerts_total",
    "skewstream_alerts_withheld_total",
    "skewstream_learn_steps_total",
    "skewstream_labels_total",
    "skewstream_labels_expired_total",
    "skewstream_features_imputed_total",
    "skewstream_features_unknown_total",
    "skewstream_dead_letters_total",
    "skewstream_drifts_total",
    "skewstream_drift_reverts_total",
    "skewstream_sampler_offered_total",
    "skewstream_sampler_kept_total",
    "skewstream_sampler_keep_rate_target",
    "skewstream_sampler_codewords_active",
    "skewstream_model_version",
    "skewstream_model_switches_total",
    "skewstream_threshold",
    "skewstream_class_threshold",
    "skewstream_alert_budget",
    "skewstream_label_store_size",
    "skewstream_minority_prior",
    "skewstream_class_weight",
    "skewstream_quality",
    "skewstream_candidate_quality",
    "skewstream_champion",
    "skewstream_consumer_lag",
    "skewstream_batch_duration_seconds",
    "skewstream_stage_duration_seconds",
    "skewstream_checkpoint_duration_seconds",
    "skewstream_checkpoints_corrupt_total",
    "skewstream_checkpoint_last_success_timestamp_seconds",
    "skewstream_loop_heartbeat_timestamp_seconds",
    "skewstream_broker_unreachable",
    "skewstream_broker_outages_total",
    "skewstream_consumer_fetch_stalls_total",
    "skewstream_build_info",
)
# recall .. kappa: of the alerts; class_*: of the class decisions (the balanced cut).
QUALITY_METRICS = (
    "pr_auc", "roc_auc", "recall", "precision", "gmean", "kappa", "recall_at_budget",
    "class_recall", "class_precision", "class_gmean", "class_kappa",
)  # fmt: skip


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if not snap:
            return
        counts = snap["counts"]
        yield _counter("events_scored", "Events scored.", counts["scored"])
        outcomes = {
            "scored": counts["scored"],
            "dead_lettered": sum(snap["dead_letters"].values()),
            "learned": counts["learned"],
            "skipped_by_sampler": counts["labelled"] - counts["learned"],
            "expired_unlabelled": counts["expired_dropped"] + counts["expired_as_negative"],
        }
        yield _labelled_counter("events", "Records by what became of them.", "outcome", outcomes.items())
        yield _counter("alerts", "Scored events that raised an alert.", counts["alerts"])
        yield _counter(
            "alerts_withheld", "Events over the cut that did not alert: 1.5 x the alert budget had in the window.",
            snap["alerts_withheld"],
        )  # fmt: skip
        yield _counter("learn_steps", "Model learning steps (events kept by the sampler).", counts["learned"])
        yield _counter("labels_expired", "Pending events whose label never came.", snap["label_store_expired"])
        yield _counter("features_imputed", "Missing feature values imputed.", snap["features_imputed"])
        yield _counter("features_unknown", "Unknown extra fields ignored.", snap["features_unknown"])
        yield _labelled_counter("labels", "Labelled events by class.", "class", enumerate(snap["labels_by_class"]))
        yield _labelled_counter("dead_letters", "Bad records by reason.", "reason", snap["dead_letters"].items())
        yield _labelled_counter("drifts", "Confirmed drifts by detector.", "detector", snap["drifts"].items())
        yield _counter(
            "drift_reverts", "Drift swaps undone: the replaced model ranked the events since surely better (model.revert_confidence).",
            snap["drift_reverts"],
        )  # fmt: skip
        sampler = snap["sampler"]
        if sampler:
            yield _labelled_counter("sampler_offered", "Labelled events offered to the sampler.", "class", enumerate(sampler["offered"]))
            yield _labelled_counter("sampler_kept", "Labelled events the sampler kept.", "class", enumerate(sampler["kept"]))
            yield _gauge("sampler_keep_rate_target", "Majority keep rate the budget asks for.", sampler["keep_rate_target"])
            yield _gauge("sampler_codewords_active", "Codewords in use.", sampler["codewords_active"])
        yield _gauge("model_version", "Version of the served model (goes up on each drift swap, undoing and champion change).", snap["model_version"])
        yield _gauge("threshold", "Current alert threshold on the fraud probability.", snap["threshold"])
        if snap.get("class_threshold") is not None:  # absent until labels of both classes
            yield _gauge(
                "class_threshold", "The class decision's cut: the best G-mean on recent labels.", snap["class_threshold"]
            )
        if snap.get("alert_budget") is not None:  # absent in gmean mode: no budget, no budget alerts
            yield _gauge("alert_budget", "Share of events the budget rule alerts on (threshold.alert_budget).", snap["alert_budget"])
        yield _gauge("label_store_size", "Scored events waiting for a label.", snap["label_store_size"])
        yield _gauge("minority_prior", "Decayed share of positives among labelled events.", snap["minority_prior"])
        weights = GaugeMetricFamily(f"{PREFIX}_class_weight", "Learning weight per class.", labels=["class"])
        for c, w in enumerate(snap["class_weights"]):
            weights.add_metric([str(c)], w)
        yield weights
        quality = GaugeMetricFamily(
            f"{PREFIX}_quality", "Prequential quality of served scores.", labels=["metric", "window"]
        )
        for window in ("run", "rolling"):
            for name in QUALITY_METRICS:
                value = snap[window].get(name, math.nan)
                quality.add_metric([name, window], value)
        yield quality
        yield _counter("checkpoints_corrupt", "Damaged checkpoints found and skipped.", snap.get("checkpoints_corrupt", 0))
        yield from _selection(snap)
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag", "Records behind the high watermark.", labels=["topic", "partition"]
        )
        for where, behind in snap.get("lag", {}).items():
            lag.add_metric(where.rsplit("/", 1), behind)
        yield lag
        if "fetch_stalls" in snap:
            yield _counter("consumer_fetch_stalls", "Partitions the consumer re-armed: records there, but held unfetchable by the client (a stale rebalance gate).", snap["fetch_stalls"])


def _selection(snap: dict[str, Any]) -> Iterator[Metric]:
    candidates = snap.get("candidates", [])
    quality = GaugeMetricFamily(
        f"{PREFIX}_candidate_quality", "Each candidate model's windowed prequential quality.", labels=["candidate", "metric"]
    )
    champion = GaugeMetricFamily(f"{PREFIX}_champion", "1 for the candidate that serves.", labels=["candidate"])
    for candidate in candidates:
        for key, value in candidate.items():
            if key not in ("name", "champion"):
                quality.add_metric([candidate["name"], key], value)
        champion.add_metric([candidate["name"]], 1.0 if candidate["champion"] else 0.0)
    yield quality
    yield champion
    yield _counter("model_switches", "Champion changes.", snap.get("model_switches", 0))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _labelled_counter(name: str, doc: str, label: str, items: Any) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}_{name}", doc, labels=[label])
    for key, value in items:
        family.add_metric([str(key)], value)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)


class ServiceMetrics:
    """The loop's view of the metrics: publish snapshots, time batches and checkpoints."""

    def __init__(self, registry: CollectorRegistry, version: str = "0.1.0") -> None:
        self.registry = registry
        self.collector = _SnapshotCollector()
        self.server: WSGIServer | None = None
        self.live: Callable[[], tuple[bool, str]] = lambda: (True, "ok")
        self.ready: Callable[[], tuple[bool, str]] = lambda: (True, "ok")
        registry.register(self.collector)
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_duration_seconds", "Wall time to decode, score and learn one poll batch.",
            registry=registry, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )  # fmt: skip
        self.stage_seconds = Histogram(
            f"{PREFIX}_stage_duration_seconds", "Time to score a micro-batch of events (stage score) / learn its labels (stage learn).",
            ["stage"], registry=registry,
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )  # fmt: skip
        for stage in ("score", "learn"):
            self.stage_seconds.labels(stage)
        self.checkpoint_seconds = Histogram(
            f"{PREFIX}_checkpoint_duration_seconds", "Wall time of one commit point.", registry=registry
        )
        self.heartbeat = Gauge(
            f"{PREFIX}_loop_heartbeat_timestamp_seconds", "Last loop iteration.", registry=registry
        )
        self.checkpoint_time = Gauge(
            f"{PREFIX}_checkpoint_last_success_timestamp_seconds", "Last successful checkpoint.",
            registry=registry,
        )
        self.broker_unreachable = Gauge(
            f"{PREFIX}_broker_unreachable", "1 while the Kafka brokers cannot be reached (an outage).",
            registry=registry,
        )
        self.broker_outages = Counter(
            f"{PREFIX}_broker_outages", "Kafka outages seen (the service waits them out).", registry=registry
        )
        Info(f"{PREFIX}_build", "Build information.", registry=registry).info({"version": version})

    def publish(self, snapshot: dict[str, Any], latency: dict[str, list[float]] | None = None) -> None:
        self.collector.snapshot = snapshot
        for stage, samples in (latency or {}).items():
            histogram = self.stage_seconds.labels(stage)
            for seconds in samples:
                histogram.observe(seconds)
            samples.clear()

    def broker_reachability(self, unreachable: bool) -> None:
        self.broker_unreachable.set(1 if unreachable else 0)
        if unreachable:
            self.broker_outages.inc()

    def serve(self, host: str, port: int) -> None:
        """``/metrics``, ``/healthz`` (the loop turns) and ``/readyz`` (ready to take traffic)."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            check = {"/healthz": self.live, "/readyz": self.ready}.get(environ.get("PATH_INFO", ""))
            if check is None:
                return metrics_app(environ, start_response)
            ok, why = check()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [why.encode() + b"\n"]

        self.server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
        threading.Thread(target=self.server.serve_forever, name="metrics-http", daemon=True).start()

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass
