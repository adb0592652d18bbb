"""``skewstream replay | synth | bench``: argument parsing, progress and the end-of-run report."""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from stream.checkpoint import CheckpointError
from stream.config import ConfigError, Settings, load_settings
from stream.protocols import ConnectError, DeliveryError

DEMO_PATH = Path("data/demo.jsonl")


def _speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("--speed: a factor > 0 or 'max'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("--speed: a factor > 0 or 'max'")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skewstream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="replay a JSONL/CSV file through the pipeline")
    replay.add_argument("input", type=Path, nargs="?", help="events (JSONL, or CSV with a header)")
    replay.add_argument("--kafka-topic", help="replay a window of this topic instead of a file")
    replay.add_argument("--from-offset", type=int, help="with --kafka-topic: first offset of every partition")
    replay.add_argument("--from-time", type=_moment, help="with --kafka-topic: first record time (ISO-8601)")
    replay.add_argument("--to-time", type=_moment, help="with --kafka-topic: end record time (ISO-8601, exclusive)")
    replay.add_argument("--labels", type=Path, help="delayed labels file (label-only records)")
    replay.add_argument("--out", type=Path, help="scores output (JSONL)")
    replay.add_argument("--dead-letters", type=Path, help="bad records (JSONL; default beside --out)")
    replay.add_argument("--config", type=Path, help="TOML settings file")
    replay.add_argument("--speed", type=_speed, default=None, help="event-time factor, or 'max' (default)")
    replay.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    replay.add_argument("--checkpoint-dir", type=Path, help="sets checkpoint.dir")
    replay.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    replay.add_argument("--model", help="serve this model alone (logreg|hoeffding|hat|arf|bagging; no selection)")
    replay.add_argument("--plot", type=Path, help="PNG of rolling quality (default beside --out)")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")

    serve = commands.add_parser("serve", help="consume Kafka, score, learn, publish (long-running)")
    serve.add_argument("--config", type=Path, help="TOML settings file ([kafka], [checkpoint] ...)")
    serve.add_argument("--checkpoint-dir", type=Path, help="sets checkpoint.dir")
    serve.add_argument("--metrics-port", type=int, help="serve /metrics, /healthz, /readyz on this port")
    serve.add_argument("--model", help="sets model.kind")

    synth = commands.add_parser("synth", help="write the seeded demo stream")
    synth.add_argument("out", type=Path)
    synth.add_argument("--events", type=int, default=200_000)
    synth.add_argument("--profile", choices=("demo", "abrupt"), default="demo",
                       help="demo: 1:250 with abrupt, gradual and prior drifts; abrupt: 1%% and one abrupt drift")  # fmt: skip
    synth.add_argument("--seed", type=int, default=7)
    synth.add_argument("--if-absent", action="store_true", help="do nothing when OUT exists")

    commands.add_parser("config-example", help="print every setting with its default and meaning (TOML)")

    report = commands.add_parser("report", help="an HTML report (with PNGs) of a scores file")
    report.add_argument("scores", type=Path, help="scores JSONL (replay --out, or the scores topic)")
    report.add_argument("--labels", type=Path, help="JSONL with id and label (the events file, or labels)")
    report.add_argument("--out", type=Path, default=Path("report.html"))
    report.add_argument("--budget", type=float, default=0.01, help="alert budget for recall at the top")

    bench = commands.add_parser("bench", help="benchmarks against river (and MOA with the peers extra)")
    bench.add_argument("what", choices=("quality", "compare", "speed", "memory", "kafka"))
    bench.add_argument("--events", type=int, default=None, help="events per stream (quality: 100,000; memory: 10,000,000; others: 200,000)")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--seeds", type=int, nargs="+", default=None, help="quality: draw the suite once per seed (instead of --seed); ranks over all")
    bench.add_argument("--profile", choices=("abrupt", "demo"), default="abrupt", help="compare: which stream")
    bench.add_argument("--streams", nargs="+", default=None, help="quality: names from the suite (default: all)")
    bench.add_argument("--stream-file", type=Path, nargs="+", default=[], help="quality: also these labelled JSONL files")
    bench.add_argument("--peers", nargs="+", default=None, help="quality: peers whose name contains one of these")
    bench.add_argument("--out", type=Path, default=Path("out/bench"), help="quality: where the table, JSON and plot go")
    bench.add_argument("--ablations", action="store_true", help="quality: skewstream with one part changed at a time, instead of peers")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if hasattr(signal, "SIGUSR1"):
        # `kill -USR1 <pid>`: every thread's stack on stderr, the process going on (a stall's first clue).
        faulthandler.register(signal.SIGUSR1, file=2, all_threads=True)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "replay":
            return _replay(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "synth":
            return _synth(args)
        if args.command == "report":
            from stream.htmlreport import write

            for path in write(args.scores, args.labels, args.out, args.budget):
                print(f"wrote {path}")
            return 0
        if args.command == "config-example":
            from stream.config import example_toml

            print(example_toml(), end="")
            return 0
        return _bench(args)
    except (ConfigError, ConnectError, CheckpointError, FileNotFoundError, OSError, ValueError) as exc:
        print(f"skewstream: error: {exc}", file=sys.stderr)
        return 2
    except DeliveryError as exc:
        print(f"skewstream: error: {exc} (stopped without committing; a restart resumes from the last checkpoint)", file=sys.stderr)
        return 3


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _serve(args: argparse.Namespace) -> int:
    from stream.service import serve

    result = serve(_settings(args, metrics_port=args.metrics_port))
    print(f"stopped after {result.pipeline.counts['scored']:,} events scored in this state")
    return 0


def _settings(args: argparse.Namespace, metrics_port: int | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    if metrics_port is not None:
        overrides["metrics"] = {"port": metrics_port}
    if args.checkpoint_dir is not None:
        overrides["checkpoint"] = {"dir": args.checkpoint_dir}
    if args.model is not None:  # this model alone: no contest
        overrides["model"] = {"kind": args.model}
        overrides["selection"] = {"enabled": False}
    return load_settings(args.config, **overrides)


def _replay(args: argparse.Namespace) -> int:
    from stream.app import ReplayOptions, replay
    from stream.report import plot, print_report

    settings = _settings(args)
    options = ReplayOptions(
        args.input, args.labels, args.out, args.dead_letters, args.resume, args.speed, args.metrics_port,
        args.kafka_topic, args.from_offset, args.from_time, args.to_time,
    )  # fmt: skip
    if (args.input is None) == (args.kafka_topic is None):
        print("skewstream: error: replay takes an INPUT file or --kafka-topic (one of them)", file=sys.stderr)
        return 2
    if args.no_progress or args.input is None:
        result = replay(settings, options)
    else:
        with _Progress(args.input) as bar:
            result = replay(settings, options, progress=bar.update)
    print_report(result.pipeline, result.seconds)
    png = args.plot or Path(args.out or args.input or "replay").with_suffix(".quality.png")
    print(f"plot: {plot(result.pipeline, png)}")
    if args.out:
        print(f"scores: {args.out}")
    return 0


class _Progress:
    """A rich progress bar over the bytes of the input file."""

    def __init__(self, path: Path) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.total = path.stat().st_size if path.exists() else 0
        self.bar = Progress(
            TextColumn("replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[events]:,} events"), TimeRemainingColumn(),
        )  # fmt: skip
        self.task = self.bar.add_task("replay", total=self.total, events=0)

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def update(self, runner: Any) -> None:
        done = runner.positions["events"].get(0, 0)
        self.bar.update(self.task, completed=done, events=runner.pipeline.counts["scored"])


def _synth(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from stream.synth import ABRUPT, DEMO, write_jsonl

    if args.if_absent and args.out.exists():
        print(f"{args.out} exists; not regenerated")
        return 0
    spec = replace(ABRUPT if args.profile == "abrupt" else DEMO, n=args.events, seed=args.seed)
    stream = write_jsonl(spec, args.out)
    print(f"wrote {args.out}: {spec.n:,} events, {int(stream.y.sum()):,} positives, drifts at {stream.drifts}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.what == "quality":
        from stream.bench.quality import run

        return run(args.events or 100_000, args.seeds or [args.seed], args.streams, args.stream_file, args.peers, args.out, args.ablations)
    events = args.events or 200_000
    if args.what == "memory":
        from stream.bench.memory import main as memory_main

        return memory_main(args.events or 10_000_000, args.seed)
    if args.what == "kafka":
        from stream.bench.kafka import main as kafka_main

        return kafka_main(events, args.seed)
    from stream.bench.compare import main as bench_main

    return bench_main(args.what, events, args.seed, args.profile)


if __name__ == "__main__":
    sys.exit(main())
