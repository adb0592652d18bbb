"""One frozen settings tree for the whole service.

Built once in ``main()`` from (highest first) explicit overrides, ``SKEWSTREAM_*`` environment
variables (``__`` nests: ``SKEWSTREAM_SAMPLER__CODEWORDS=32``) and a TOML file, then passed down.
Nothing reads it at import time. ``extra="forbid"`` everywhere: a typo is an error naming the key.
"""

from __future__ import annotations

import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

# The TOML file of the Settings being built (a source below env vars, above defaults).
_toml_path: ContextVar[Path | None] = ContextVar("_toml_path", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __setstate__(self, state: dict[Any, Any]) -> None:
        # A checkpoint keeps the settings it ran with; one from an older build lacks the settings
        # added since, which then take their defaults (else the first use raises AttributeError).
        values = state.get("__dict__", {})
        for name, field in type(self).model_fields.items():
            if name not in values:
                values[name] = field.get_default(call_default_factory=True)
        super().__setstate__(state)


class InputSettings(_Section):
    id_field: str = Field("id", description="Name of the event id field.")
    ts_field: str = Field("ts", description="Name of the event-time field (seconds or ISO-8601).")
    label_field: str = Field("label", description="Name of the label field (0|1|true|false|null).")
    features: list[str] | None = Field(
        None, description="Fixed feature order; None freezes it from the first valid event."
    )
    max_record_bytes: int = Field(65_536, gt=0, description="Longer records go to dead letters.")
    max_abs_value: float = Field(
        1e15, gt=0, description="Feature values of larger magnitude go to dead letters (they would overflow statistics)."
    )
    dedupe_window: int = Field(
        200_000, gt=0, description="How many recent event ids are remembered to reject duplicates."
    )


class SamplerSettings(_Section):
    enabled: bool = Field(True, description="False keeps every majority event (no resampling).")
    mode: Literal["vq", "random"] = Field(
        "vq", description="vq: codebook token buckets; random: uniform undersampling (ablation)."
    )
    codewords: int = Field(64, ge=1, le=4096, description="Codebook size K.")
    ratio: float = Field(
        30.0, gt=0, description="Target kept majority:minority ratio r of the training stream."
    )
    lr_floor: float = Field(
        0.01, gt=0, le=1, description="Lower bound of a codeword's 1/n learning rate (tracks drift)."
    )
    reseed_distance: float = Field(
        4.0, gt=0, description="Re-seed the least-used codeword for an event this many times farther than the average quantisation distance."
    )
    min_keep_rate: float = Field(
        0.8, ge=0, le=1, description="Floor of the majority keep rate (at 1:1000, ratio x prior keeps too few negatives to learn from)."
    )
    bucket_capacity: float = Field(4.0, ge=1, description="Tokens a codeword can save up.")
    prior_decay: float = Field(0.999, gt=0, lt=1, description="Decay of the minority-rate estimate.")
    warmup: int = Field(
        500, ge=0, description="Labelled events seen before undersampling starts (all kept before)."
    )
    density_correction: bool = Field(
        True, description="Weight kept majority events by their region's inverse keep rate (thinning keeps the majority's density)."
    )
    max_correction: float = Field(50.0, ge=1, description="Cap on that density-correction weight.")
    drift_lr_boost: int = Field(
        20, ge=1, description="On drift, codeword counts are capped here so rates jump to >= 1/this."
    )


class WeightingSettings(_Section):
    enabled: bool = Field(True, description="False trains every kept event with weight 1.")
    decay: float = Field(0.999, gt=0, lt=1, description="Decay of the class priors (0.99..0.9999).")
    beta: float = Field(0.5, ge=0, le=2, description="Weight = (prior_majority / prior_c) ** beta.")
    max_weight: float = Field(20.0, ge=1, description="Cap on any class weight.")
    warmup: int = Field(0, ge=0, description="Kept events before reweighting starts (deferred).")


ModelKind = Literal["logreg", "hoeffding", "hat", "arf", "bagging"]
DetectorKind = Literal["adwin", "kswin", "page_hinkley", "none"]


class ModelSettings(_Section):
    kind: ModelKind = Field("bagging", description="Learner behind the fraud probability (logreg, hoeffding, bagging: compiled; hat, arf: river).")
    seed: int = Field(42, description="Seed of every random choice of the model and repeats.")
    ensemble_size: int = Field(20, ge=1, le=100, description="Members of arf / bagging (20: the best PR-AUC rank of bench quality).")
    grace_period: int = Field(100, ge=10, description="Hoeffding trees: events between split tries.")
    tie_threshold: float = Field(
        0.1, gt=0, le=1, description="Hoeffding trees: split on the best candidate once the Hoeffding bound is below this, however close the runner-up (river's tau, 0.05 there; 0.1 ranked best)."
    )
    max_leaves: int = Field(
        1024, ge=2, le=65_536, description="hoeffding / bagging: leaves per tree at most (bounds memory; leaves keep learning)."
    )
    subspace: int = Field(
        0, ge=0, description="bagging: features a new leaf may split on, drawn at random (0: all; ARF's diversity)."
    )
    bagging_rate: float = Field(
        1.0, gt=0, le=10, description="bagging: each tree learns an event Poisson(rate) times (1: Oza's online bagging; above 1: leveraging, as ARF's 6)."
    )
    learning_rate: float = Field(0.05, gt=0, description="logreg: SGD step size.")
    micro_batch: int = Field(
        64, ge=1, le=4_096,
        description="Events scored together (one kernel call per model) before any of them is learned; 1: strictly one by one.",
    )  # fmt: skip
    drift: DetectorKind = Field(
        "adwin", description="Detector on each class's error; 'none' disables drift handling."
    )
    drift_scope: Literal["per_class", "overall"] = Field(
        "per_class", description="Watch each class's error (per_class) or the overall error (ablation)."
    )
    drift_delta: float = Field(0.002, gt=0, lt=1, description="ADWIN confidence of a drift.")
    warning_delta: float = Field(0.01, gt=0, lt=1, description="ADWIN confidence of a warning.")
    drift_cooldown: int = Field(
        5_000, ge=0, description="Labelled events after the start and after a swap before drift watch."
    )
    background_timeout: int = Field(
        20_000, ge=1, description="Labelled events a background model may take to beat the served one."
    )
    swap_min_positives: int = Field(
        20, ge=1, description="Positives a background model must have scored before it can be swapped in."
    )
    swap_confidence: float = Field(
        0.0, ge=0,
        description="To be swapped in, a background model's average precision on the trial's events must beat the served one's by this many standard deviations of the lead over bootstrap resamples of the positives; 0: any lead.",
    )  # fmt: skip
    revert_confidence: float = Field(
        2.0, ge=0,
        description="After a swap the replaced model keeps learning for background_timeout labelled events and comes back if its average precision on the events since beats the new one's by this many standard deviations (as swap_confidence); 0: swaps are final.",
    )  # fmt: skip


class SelectionSettings(_Section):
    enabled: bool = Field(True, description="Score with every candidate and serve the best; False: model.kind alone.")
    candidates: list[ModelKind] = Field(
        default_factory=lambda: ["logreg", "hoeffding", "bagging"],  # type: ignore[arg-type]
        min_length=1, description="Learners in the contest (model.kind, if listed, starts as champion).",
    )  # fmt: skip
    metric: Literal["pr_auc", "roc_auc", "recall_at_budget", "gmean"] = Field(
        "pr_auc", description="Prequential quality the candidates are ranked by."
    )
    window: int = Field(20_000, ge=100, description="Labelled events in the ranking window.")
    margin: float = Field(0.02, ge=0, description="How much better a challenger must be to take over.")
    min_positives: int = Field(100, ge=1, description="Positives seen since the last change (or drift) before another.")
    patience: int = Field(
        100, ge=1, description="Positives over which a challenger must lead by the margin at every ranking."
    )
    rank_every: int = Field(
        5, ge=1, description="Positives between rankings (each sorts the window once per candidate)."
    )
    mode: Literal["champion", "blend"] = Field(
        "champion", description="champion: serve the best; blend: quality-weighted mean of all."
    )
    challenger_share: float = Field(
        1.0, gt=0, le=1, description="Share of kept majority events challengers learn (weighted up)."
    )


class AnomalySettings(_Section):
    kind: Literal["hst", "codebook", "none"] = Field(
        "hst", description="hst: Half-Space Trees (compiled); codebook: distance to the majority codebook."
    )
    trees: int = Field(10, ge=1, description="HalfSpaceTrees: number of trees.")
    height: int = Field(8, ge=1, description="HalfSpaceTrees: tree height.")
    window: int = Field(250, ge=1, description="HalfSpaceTrees: window size.")
    learn_every: int = Field(4, ge=1, description="Learn from every k-th majority/unlabelled event.")


class ThresholdSettings(_Section):
    mode: Literal["budget", "gmean"] = Field(
        "budget",
        description="budget: alert on the top alert_budget of scores (bounds the alert volume); gmean: the cut "
        "with the best G-mean on recent labels (the budget rule until labels of both classes arrive). Either way "
        "each score's class decision ('predicted') is its side of that G-mean cut.",
    )
    alert_budget: float = Field(0.01, gt=0, lt=1, description="q: share of events to alert on.")
    window: int = Field(20_000, ge=100, description="Recent scores (budget cut) and labels (G-mean cut) used.")
    refresh_every: int = Field(100, ge=1, description="Scores (budget cut) and labels (G-mean cut) between recomputations.")
    initial: float = Field(0.5, ge=0, le=1, description="Threshold until the window is warm.")


class LabelSettings(_Section):
    max_pending: int = Field(
        200_000, ge=1, description="Scored-but-unlabelled events held at most (each about 500 bytes + 16 per feature)."
    )
    ttl_seconds: float = Field(
        7 * 86_400.0, gt=0, description="Event-time age after which a pending event expires."
    )
    timeout_as_negative: bool = Field(
        False, description="Learn expired events as negatives instead of dropping them."
    )


class CheckpointSettings(_Section):
    dir: Path | None = Field(None, description="Directory for checkpoints; None disables them.")
    every_events: int = Field(50_000, ge=1, description="Commit point after this many events.")
    every_seconds: float = Field(30.0, gt=0, description="... or after this many seconds.")
    keep: int = Field(3, ge=1, description="Checkpoints kept on disk (newest first).")
    signing_key_env: str = Field(
        "SKEWSTREAM_CHECKPOINT_KEY", description="Environment variable holding the HMAC-SHA256 key, if set."
    )
    signing_key_file: Path | None = Field(
        None, description="File holding the HMAC-SHA256 key (e.g. a mounted secret); beats the variable."
    )


class QualitySettings(_Section):
    rolling_window: int = Field(20_000, ge=100, description="Labelled events in rolling metrics.")
    report_every: int = Field(2_000, ge=1, description="Labelled events between report points.")


class MetricsSettings(_Section):
    host: str = Field("127.0.0.1", description="Bind address of the /metrics endpoint.")
    port: int | None = Field(None, ge=0, le=65_535, description="Port of /metrics; None: off.")


class KafkaSettings(_Section):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    group_id: str = Field("skewstream", description="Consumer group of the events and labels topics.")
    instance_id: str = Field(
        "default", description="Names this process's state checkpoint; unique per process of a group."
    )
    events_topic: str = Field("events", description="Topic of the events to score.")
    labels_topic: str | None = Field(
        "labels", description="Topic of delayed labels (co-partitioned with events by id); None: off."
    )
    scores_topic: str = Field("scores", description="Topic the score messages go to.")
    dead_letters_topic: str = Field("dead-letters", description="Topic bad records go to.")
    poll_timeout_ms: int = Field(200, ge=1, description="Longest wait of one poll for records.")
    flush_timeout_seconds: float = Field(
        60.0, gt=0, description="Longest wait for acknowledgements from a reachable broker (an outage is waited out)."
    )
    delivery_attempts: int = Field(
        3, ge=1, description="Rounds of sending a refused message (with backoff) before the service stops."
    )
    close_timeout_seconds: float = Field(10.0, gt=0, description="Bound on closing the clients.")
    max_held_labels: int = Field(
        10_000, ge=1, description="Labels waiting for their event time before the labels topic pauses."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers."
    )
    sasl_mechanism: str | None = Field(None, description="SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.")
    sasl_username: str | None = Field(None, description="SASL user.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret: never printed or logged).")
    ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")
    ssl_password: SecretStr | None = Field(None, description="Password of the client key (secret).")
    consumer: dict[str, Any] = Field(
        default_factory=dict, description="Any other kafka-python KafkaConsumer setting, passed as is."
    )
    producer: dict[str, Any] = Field(
        default_factory=dict, description="Any other kafka-python KafkaProducer setting, passed as is."
    )


    @field_validator("consumer", "producer")
    @classmethod
    def _not_fixed(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        fixed = _FIXED_CLIENT_KEYS[str(info.field_name)] & set(value)
        if fixed:
            raise ValueError(f"{sorted(fixed)} fixed by skewstream (delivery guarantees) or set by a kafka.* key")
        return value


_CONNECTION_KEYS = {"bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_plain_username",
                    "sasl_plain_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password"}  # fmt: skip
_FIXED_CLIENT_KEYS = {
    "consumer": _CONNECTION_KEYS | {"group_id", "enable_auto_commit", "partition_assignment_strategy"},
    "producer": _CONNECTION_KEYS | {"acks"},
}


class HealthSettings(_Section):
    heartbeat_max_age_seconds: float = Field(
        30.0, gt=0, description="/healthz fails when the loop has not turned for this long."
    )
    checkpoint_max_age_seconds: float = Field(
        120.0, gt=0, description="/readyz fails when the last checkpoint is older than this."
    )


class Settings(BaseSettings):
    """The whole configuration. See ``deploy/config.example.toml`` for every key."""

    model_config = SettingsConfigDict(
        env_prefix="SKEWSTREAM_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    input: InputSettings = InputSettings()
    sampler: SamplerSettings = SamplerSettings()
    weighting: WeightingSettings = WeightingSettings()
    model: ModelSettings = ModelSettings()
    selection: SelectionSettings = SelectionSettings()
    anomaly: AnomalySettings = AnomalySettings()
    threshold: ThresholdSettings = ThresholdSettings()
    labels: LabelSettings = LabelSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    quality: QualitySettings = QualitySettings()
    metrics: MetricsSettings = MetricsSettings()
    kafka: KafkaSettings = KafkaSettings()
    health: HealthSettings = HealthSettings()

    @model_validator(mode="after")
    def _distinct_fields(self) -> Settings:
        names = [self.input.id_field, self.input.ts_field, self.input.label_field]
        if len(set(names)) != 3:
            raise ValueError("input.id_field, input.ts_field and input.label_field must differ")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        path = _toml_path.get()
        if path is not None:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=path),)
        return sources


class ConfigError(Exception):
    """A setting is wrong; the message is one line naming the key and the problem."""


def checkpoint_key(settings: CheckpointSettings) -> bytes | None:
    """The checkpoint signing key, from ``signing_key_file`` or the ``signing_key_env`` variable."""
    import os

    if settings.signing_key_file is not None:
        try:
            key = settings.signing_key_file.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"checkpoint.signing_key_file: cannot read {settings.signing_key_file}: {exc.strerror}") from None
    else:
        key = os.environ.get(settings.signing_key_env, "").encode()
    if key and len(key) < 16:
        raise ConfigError("checkpoint.signing_key_*: the key must have at least 16 bytes")
    return key or None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: ``overrides`` (nested dicts) > ``SKEWSTREAM_*`` env > TOML file > defaults."""
    if path is not None:
        try:
            tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"--config: file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config: {path} is not valid TOML: {exc}") from None
    token = _toml_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    finally:
        _toml_path.reset(token)


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "settings"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if first["type"] == "extra_forbidden":
        fix = "no such setting: `skewstream config-example` lists every key"
    else:
        fix = f"fix it in the config file or SKEWSTREAM_{key.upper().replace('.', '__')}"
    return f"setting '{key}': {first['msg']}{more}; {fix}"


def example_toml() -> str:
    """Every setting with its default and meaning, as TOML (``deploy/config.example.toml``)."""
    lines = [
        "# skewstream settings: every key with its default and meaning.",
        "# Generated by `skewstream config-example`; tests keep it in sync with stream/config.py.",
        "# Any key can also be set as SKEWSTREAM_<SECTION>__<KEY> (environment beats this file).",
    ]
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        lines += ["", f"[{section}]"]
        for key, info in model.model_fields.items():
            default = info.get_default(call_default_factory=True)
            if info.description:
                lines.append(f"# {info.description}")
            value = _toml_value(default)
            lines.append(f"{key} = {value}" if value is not None else f"# {key} =   (not set)")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(str(_toml_value(v)) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    raise TypeError(f"no TOML for {value!r}")
