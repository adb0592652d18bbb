"""deploy/ stays true to the code: settings example in sync, compose valid, manifests consistent."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import yaml

from stream.config import Settings, example_toml, load_settings
from tests.conftest import broker_module, require_tool

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def test_config_example_lists_every_setting_with_its_default() -> None:
    text = (DEPLOY / "config.example.toml").read_text()
    assert text == example_toml(), "run: skewstream config-example > deploy/config.example.toml"
    assert load_settings(DEPLOY / "config.example.toml") == Settings()
    for section, field in Settings.model_fields.items():
        for key in field.annotation.model_fields:  # type: ignore[union-attr]
            assert f"\n{key} = " in text or f"\n# {key} =" in text, f"{section}.{key}"


def test_compose_file_is_valid() -> None:
    tool = require_tool("docker-compose", "Debian package docker-compose, for `config` only")
    done = subprocess.run([tool, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert set(compose["services"]) == {"kafka", "topics", "skewstream", "prometheus", "grafana"}
    assert all(p.startswith("127.0.0.1:") for s in compose["services"].values() for p in s.get("ports", []))


def manifests() -> dict[str, dict]:  # type: ignore[type-arg]
    return {doc["kind"]: doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())}


def test_kubernetes_manifests_fit_together() -> None:
    docs = manifests()
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "PersistentVolumeClaim", "PodDisruptionBudget", "ServiceMonitor"}
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = tomllib.loads(docs["ConfigMap"]["data"]["config.toml"])
    settings = Settings(**config)
    assert container["ports"][0]["containerPort"] == settings.metrics.port == int(pod["metadata"]["annotations"]["prometheus.io/port"])
    claim = next(v for v in pod["spec"]["volumes"] if v["name"] == "checkpoints")["persistentVolumeClaim"]["claimName"]
    assert claim == docs["PersistentVolumeClaim"]["metadata"]["name"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "checkpoints")["mountPath"]
    assert str(settings.checkpoint.dir) == mount


def test_systemd_unit_runs_serve_and_stops_gracefully() -> None:
    unit = (DEPLOY / "systemd" / "skewstream.service").read_text()
    assert "skewstream serve --config" in unit and "KillSignal=SIGTERM" in unit


def test_the_test_brokers_cluster_ids_never_look_like_an_option() -> None:
    """kafka-storage's parser took an id starting with "-" for an option: one broker start in 64 failed."""
    import base64

    broker = broker_module()
    ids = [broker.cluster_id() for _ in range(5000)]  # about 78 would start with "-" if drawn plainly
    assert not any(i.startswith("-") for i in ids)
    assert all(len(base64.urlsafe_b64decode(i + "==")) == 16 for i in ids)  # still a UUID, as Kafka's
    assert len(set(ids)) == len(ids)
