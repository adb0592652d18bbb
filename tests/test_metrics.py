"""The exported metrics of a pipeline snapshot."""

from __future__ import annotations

import numpy as np
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


def test_alerts_the_budget_bound_withheld_are_counted() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    pipeline = Pipeline(load_settings(None, threshold={"alert_budget": 0.01, "window": 1000}))
    pipeline.threshold.judge(np.linspace(0.0, 1.0, 2000))  # every score outscores the ones before
    metrics.publish(pipeline.snapshot())
    withheld = pipeline.threshold.withheld
    assert withheld > 1000 and f"skewstream_alerts_withheld_total {float(withheld)}" in generate_latest(metrics.registry).decode()


def test_the_class_decisions_cut_and_quality_are_exported_once_labels_of_both_classes_give_it() -> None:
    metrics = ServiceMetrics(CollectorRegistry())
    pipeline = Pipeline(load_settings(None, threshold={"refresh_every": 10}))
    metrics.publish(pipeline.snapshot())
    assert "skewstream_class_threshold" not in generate_latest(metrics.registry).decode()
    scores = np.linspace(0.0, 1.0, 40)
    pipeline.quality.observe_many((scores > 0.7).astype(np.int64), scores, np.stack([scores > 0.9, scores > 0.6]))
    pipeline.threshold.observe_labels((scores > 0.7).astype(np.int64), scores)
    metrics.publish(pipeline.snapshot())
    text = generate_latest(metrics.registry).decode()
    assert f"skewstream_class_threshold {pipeline.threshold.balanced}" in text and 0.69 < pipeline.threshold.balanced < 0.71  # type: ignore[operator]
    assert 'skewstream_quality{metric="class_recall",window="run"} 1.0' in text
    assert 'skewstream_quality{metric="recall",window="run"} 0.33' in text
