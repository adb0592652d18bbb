"""The monitoring contract offline: dashboard built from code, rules unit-tested, names all exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from stream.metrics import METRIC_NAMES
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "dashboards" / "prometheus" / "alerts.yml"
sys.path.insert(0, str(ROOT / "dashboards"))
import generate  # noqa: E402  (dashboards/generate.py, not a package)


def rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def names_in(exprs: list[str]) -> set[str]:
    found = set()
    for name in re.findall(r"skewstream_[a-z_]+", " ".join(exprs)):
        found.add(re.sub(r"_(bucket|sum|count)$", "", name) if not name.endswith("_total") else name)
    return found


def test_committed_dashboard_is_what_the_builder_builds() -> None:
    assert generate.main(["--check"]) == 0


def test_every_metric_in_dashboards_and_rules_exists_and_the_important_ones_are_watched() -> None:
    used = names_in(generate.queries()) | names_in(rule_exprs())
    assert used <= set(METRIC_NAMES), used - set(METRIC_NAMES)
    minor = {"skewstream_build_info", "skewstream_features_imputed_total", "skewstream_features_unknown_total"}
    assert not set(METRIC_NAMES) - used - minor, set(METRIC_NAMES) - used - minor


def test_alert_rules_pass_promtool_check_and_their_unit_tests() -> None:
    tool = require_tool("promtool", "Debian package prometheus")
    subprocess.run([tool, "check", "rules", str(RULES)], check=True, capture_output=True)
    done = subprocess.run([tool, "test", "rules", str(RULES.with_name("alerts.test.yml"))], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
