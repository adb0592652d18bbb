"""The exported metrics of a pipeline snapshot."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from stream.config import load_settings
from stream.metrics import ServiceMetrics
from stream.pipeline import Pipeline


def exported(**overrides: object) -> str:
    metrics = ServiceMetrics(CollectorRegistry())
    metrics.publish(Pipeline(load_settings(None, **overrides)).snapshot())
    return generate_latest(metrics.registry).decode()


def test_the_alert_budget_is_exported_only_where_a_budget_decides() -> None:
    # The rules compare the alert rate and the share of positives with it; in gmean mode there is
    # no budget, and no series: those rules stay silent instead of comparing with a made-up one.
    assert "skewstream_alert_budget 0.003" in exported(threshold={"alert_budget": 0.003})
    assert "skewstream_alert_budget" not in exported(threshold={"mode": "gmean"})
