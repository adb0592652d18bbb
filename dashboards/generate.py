"""Builds ``dashboards/grafana/skewstream.json`` with grafana-foundation-sdk's typed builders.

    python dashboards/generate.py          # rewrite the JSON
    python dashboards/generate.py --check  # exit 1 if the committed JSON is not what this builds

Edit the panels here, never the JSON. ``tests/test_dashboards.py`` runs --check, and runs every
panel's PromQL against a live Prometheus scraping a live service.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, GridPos

OUT = Path(__file__).resolve().parent / "grafana" / "skewstream.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"

# row title -> panels: (title, unit, [(PromQL, legend)])
ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]] = [
    ("Throughput and latency", [
        ("Events scored and learned / s", "ops", [
            (f"sum by (instance) (rate(skewstream_events_scored_total{{{SEL}}}[{RATE}]))", "scored {{instance}}"),
            (f"sum by (instance) (rate(skewstream_learn_steps_total{{{SEL}}}[{RATE}]))", "learned {{instance}}"),
        ]),
        ("Poll batch duration p50 / p99", "s", [
            (f"histogram_quantile(0.5, sum by (le) (rate(skewstream_batch_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "p50"),
            (f"histogram_quantile(0.99, sum by (le) (rate(skewstream_batch_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "p99"),
        ]),
        ("Score / learn time per micro-batch p50 / p99", "s", [
            (f"histogram_quantile(0.5, sum by (le, stage) (rate(skewstream_stage_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "{{stage}} p50"),
            (f"histogram_quantile(0.99, sum by (le, stage) (rate(skewstream_stage_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "{{stage}} p99"),
        ]),
    ]),
    ("Kafka", [
        ("Consumer lag by partition (and starved partitions re-armed)", "short", [
            (f"skewstream_consumer_lag{{{SEL}}}", "{{topic}}/{{partition}}"),
            (f"increase(skewstream_consumer_fetch_stalls_total{{{SEL}}}[1h])", "re-armed in 1h {{instance}}"),
        ]),
        ("Seconds since the last checkpoint (commit)", "s", [(f"time() - skewstream_checkpoint_last_success_timestamp_seconds{{{SEL}}}", "{{instance}}")]),
        ("Checkpoint duration p99", "s", [(f"histogram_quantile(0.99, sum by (le) (rate(skewstream_checkpoint_duration_seconds_bucket{{{SEL}}}[{RATE}])))", "p99")]),
        ("Broker unreachable (outages waited out)", "short", [
            (f"skewstream_broker_unreachable{{{SEL}}}", "unreachable {{instance}}"),
            (f"increase(skewstream_broker_outages_total{{{SEL}}}[1h])", "outages in 1h {{instance}}"),
        ]),
    ]),
    ("Class balance and sampler", [
        ("Labels / s by class", "ops", [(f"sum by (class) (rate(skewstream_labels_total{{{SEL}}}[{RATE}]))", "class {{class}}")]),
        ("Decayed minority prior", "percentunit", [(f"skewstream_minority_prior{{{SEL}}}", "{{instance}}")]),
        ("Sampler keep ratio by class", "percentunit", [
            (f"sum by (class) (rate(skewstream_sampler_kept_total{{{SEL}}}[{RATE}])) / sum by (class) (rate(skewstream_sampler_offered_total{{{SEL}}}[{RATE}]))", "kept, class {{class}}"),
            (f"skewstream_sampler_keep_rate_target{{{SEL}}}", "majority target"),
        ]),
        ("Codewords in use / class weights", "short", [
            (f"skewstream_sampler_codewords_active{{{SEL}}}", "codewords"),
            (f"skewstream_class_weight{{{SEL}}}", "weight, class {{class}}"),
        ]),
    ]),
    ("Quality and threshold", [
        ("Rolling quality of served scores", "percentunit", [(f'skewstream_quality{{{SEL}, window="rolling"}}', "{{metric}}")]),
        ("Candidates: windowed quality (serving = 1)", "percentunit", [
            (f"skewstream_candidate_quality{{{SEL}}}", "{{candidate}} {{metric}}"),
            (f"skewstream_champion{{{SEL}}}", "serving: {{candidate}}"),
        ]),
        ("Threshold and alert rate", "percentunit", [
            (f"skewstream_threshold{{{SEL}}}", "threshold"),
            (f"skewstream_class_threshold{{{SEL}}}", "class decision's cut"),
            (f"sum(rate(skewstream_alerts_total{{{SEL}}}[{RATE}])) / sum(rate(skewstream_events_scored_total{{{SEL}}}[{RATE}]))", "alert rate"),
            (f"max(skewstream_alert_budget{{{SEL}}})", "alert budget"),
            (f"max(skewstream_minority_prior{{{SEL}}})", "share of positives"),
            (f"sum(rate(skewstream_alerts_withheld_total{{{SEL}}}[{RATE}])) / sum(rate(skewstream_events_scored_total{{{SEL}}}[{RATE}]))",
             "withheld by the budget's bound"),
        ]),
    ]),
    ("Drift", [
        ("Drifts by detector, and swaps undone (1h)", "short", [
            (f"sum by (detector) (increase(skewstream_drifts_total{{{SEL}}}[1h]))", "{{detector}}"),
            (f"sum(increase(skewstream_drift_reverts_total{{{SEL}}}[1h]))", "undone"),
        ]),
        ("Model version and champion changes", "short", [
            (f"skewstream_model_version{{{SEL}}}", "version {{instance}}"),
            (f"skewstream_model_switches_total{{{SEL}}}", "switches {{instance}}"),
        ]),
    ]),
    ("Health", [
        ("Records by outcome / s", "ops", [(f"sum by (outcome) (rate(skewstream_events_total{{{SEL}}}[{RATE}]))", "{{outcome}}")]),
        ("Seconds since the loop turned", "s", [(f"time() - skewstream_loop_heartbeat_timestamp_seconds{{{SEL}}}", "{{instance}}")]),
        ("Damaged checkpoints skipped", "short", [(f"skewstream_checkpoints_corrupt_total{{{SEL}}}", "{{instance}}")]),
        ("Dead letters / s by reason", "ops", [(f"sum by (reason) (rate(skewstream_dead_letters_total{{{SEL}}}[{RATE}]))", "{{reason}}")]),
        ("Label store: pending and expired / s", "short", [
            (f"skewstream_label_store_size{{{SEL}}}", "pending"),
            (f"rate(skewstream_labels_expired_total{{{SEL}}}[{RATE}])", "expired / s"),
        ]),
    ]),
]  # fmt: skip

DRIFT_ANNOTATION = f"changes(skewstream_model_version{{{SEL}}}[1m]) > 0"


def _panel(title: str, unit: str, queries: list[tuple[str, str]], x: int, y: int) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).grid_pos(GridPos(h=8, w=8, x=x, y=y))
    for i, (expr, legend) in enumerate(queries):
        panel = panel.with_target(prom.Dataquery().expr(expr).legend_format(legend).ref_id(chr(ord("A") + i)))
    return panel


def _variable(name: str, query: str) -> db.QueryVariable:
    return db.QueryVariable(name).label(name).datasource(DATASOURCE).query(query).multi(True).include_all(True)


def build() -> db.Dashboard:
    board = (
        db.Dashboard("skewstream")
        .uid("skewstream")
        .tags(["skewstream", "imbalanced-streams"])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(db.DatasourceVariable("datasource").type("prometheus"))
        .with_variable(_variable("job", "label_values(skewstream_build_info, job)"))
        .with_variable(_variable("instance", 'label_values(skewstream_build_info{job=~"$job"}, instance)'))
        .annotation(
            db.AnnotationQuery().name("Model changes (drift or champion switch)").datasource(DATASOURCE)
            .expr(DRIFT_ANNOTATION).enable(True).icon_color("orange")
        )  # fmt: skip
    )
    y = 0
    for row_title, panels in ROWS:
        board = board.with_row(db.Row(row_title).grid_pos(GridPos(h=1, w=24, x=0, y=y)))
        y += 1
        for i, (title, unit, queries) in enumerate(panels):
            board = board.with_panel(_panel(title, unit, queries, x=8 * (i % 3), y=y + 8 * (i // 3)))
        y += 8 * ((len(panels) + 2) // 3)
    return board


def render() -> str:
    return json.dumps(json.loads(JSONEncoder().encode(build().build())), indent=2, sort_keys=True) + "\n"


def queries() -> list[str]:
    """Every PromQL expression of the dashboard (panels and the annotation)."""
    return [expr for _, panels in ROWS for _, _, targets in panels for expr, _ in targets] + [DRIFT_ANNOTATION]


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT} is not what dashboards/generate.py builds: run it", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
