"""Shared fixtures: small seeded streams and settings for fast, offline runs."""

from __future__ import annotations

import functools
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import os
import shutil

import pytest

from stream.config import Settings, load_settings
from stream.synth import ABRUPT, DEMO, Stream, write_jsonl


@functools.cache
def broker_module() -> Any:
    """``deploy/kafka/broker.py`` (the test broker; not a package) as a module."""
    path = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "broker.py"
    spec = importlib.util.spec_from_file_location("skewstream_broker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def small_settings(**overrides: Any) -> Settings:
    """Defaults, minus the slow parts a unit test does not exercise."""
    base: dict[str, Any] = {
        "anomaly": {"kind": "codebook"},
        "model": {"kind": "hoeffding"},
        "selection": {"enabled": False},
    }
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return load_settings(None, **base)


@pytest.fixture
def settings() -> Settings:
    return small_settings()


@pytest.fixture
def demo_file(tmp_path: Path) -> tuple[Path, Stream]:
    """A 6,000-event demo stream with delayed labels and all three drifts."""
    path = tmp_path / "demo.jsonl"
    return path, write_jsonl(replace(DEMO, n=6_000, positive_rate=0.02, max_delay=300), path)


@pytest.fixture
def abrupt_file(tmp_path: Path) -> tuple[Path, Stream]:
    path = tmp_path / "abrupt.jsonl"
    return path, write_jsonl(replace(ABRUPT, n=8_000, positive_rate=0.03), path)


def require_tool(name: str, why: str) -> str:
    """Path of a command the test needs; missing, it skips - or fails where CI requires it."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("SKEWSTREAM_REQUIRE_KAFKA") == "1":
            pytest.fail(f"{name} missing ({why}; make test installs it)")
        pytest.skip(f"{name} missing")
    return found
