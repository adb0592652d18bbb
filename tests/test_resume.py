"""Abort a replay midway, resume from the checkpoint: scores and final model equal an unbroken run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stream.app import ReplayOptions, RunResult, replay
from stream.checkpoint import state_digest
from stream.loop import Runner
from stream.synth import DEMO, write_jsonl
from tests.conftest import small_settings


class Crash(Exception):
    pass


def crash_after(batches: int):  # type: ignore[no-untyped-def]
    def setup(runner: Runner) -> None:
        seen = [0]

        def on_batch(r: Runner) -> None:
            seen[0] += 1
            if seen[0] == batches:
                raise Crash

        runner.on_batch = on_batch

    return setup


def digest(result: RunResult) -> dict[str, str]:
    state = result.pipeline.__getstate__()
    return {k: state_digest(v) for k, v in state.items()}


@pytest.mark.parametrize("kind", ["hoeffding", "arf", "bagging", "selection"])
def test_resume_after_abort_equals_uninterrupted_run(tmp_path: Path, demo_file, kind: str) -> None:  # type: ignore[no-untyped-def]
    path, _ = demo_file
    selection = {"enabled": kind == "selection", "candidates": ["logreg", "hoeffding"], "min_positives": 5}
    settings = small_settings(
        model={"kind": "hoeffding" if kind == "selection" else kind, "ensemble_size": 2},
        selection=selection, checkpoint={"dir": tmp_path / "ck", "every_events": 700},
    )  # fmt: skip
    straight = replay(settings, ReplayOptions(path, out=tmp_path / "a.jsonl", dead_letters=tmp_path / "a.dead"))

    opts = ReplayOptions(path, out=tmp_path / "b.jsonl", dead_letters=tmp_path / "b.dead")
    with pytest.raises(Crash):
        replay(settings, opts, setup=crash_after(5))
    lines_at_crash = (tmp_path / "b.jsonl").read_bytes().count(b"\n")
    resumed = replay(settings, ReplayOptions(opts.input, out=opts.out, dead_letters=opts.dead_letters, resume=True))

    assert resumed.resumed and 0 < lines_at_crash < 6_000
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert (tmp_path / "b.jsonl").read_bytes().count(b"\n") == 6_000  # every event scored exactly once
    assert digest(resumed) == digest(straight)
    assert resumed.pipeline.counts == straight.pipeline.counts
    assert resumed.pipeline.quality.summary() == straight.pipeline.quality.summary()
    if kind == "selection":  # the contest is state too: same champion, same switches
        assert resumed.pipeline.model.switch_log == straight.pipeline.model.switch_log


def test_resume_without_checkpoint_dir_is_a_clear_error(demo_file) -> None:  # type: ignore[no-untyped-def]
    from stream.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="checkpoint.dir"):
        replay(small_settings(), ReplayOptions(demo_file[0], resume=True))


def test_resume_inside_a_hedged_drift_swap_equals_uninterrupted_run(tmp_path: Path) -> None:
    """A checkpoint taken while the replaced model is on trial to come back (a hedged swap) resumes
    to the same swap back, scores and state as a run that never stopped."""
    path = tmp_path / "demo.jsonl"
    write_jsonl(replace(DEMO, n=6_000, positive_rate=0.05, max_delay=300), path)
    model = {"kind": "hoeffding", "drift_cooldown": 200, "swap_min_positives": 5, "background_timeout": 1500}
    settings = small_settings(model=model, checkpoint={"dir": tmp_path / "ck", "every_events": 100})
    straight = replay(settings, ReplayOptions(path, out=tmp_path / "a.jsonl", dead_letters=tmp_path / "a.dead"))
    (swapped, _), (reverted, _) = straight.pipeline.history.drifts  # one swap, then undone
    assert straight.pipeline.model.reverts == 1
    last_checkpoint = 9 * 512  # a commit point after each batch of 512; the crash comes in the 10th
    assert swapped < last_checkpoint < reverted  # the checkpoint holds a hedge

    opts = ReplayOptions(path, out=tmp_path / "b.jsonl", dead_letters=tmp_path / "b.dead")
    with pytest.raises(Crash):
        replay(settings, opts, setup=crash_after(10))
    resumed = replay(settings, replace(opts, resume=True))
    assert (tmp_path / "b.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert resumed.pipeline.history.drifts == straight.pipeline.history.drifts
    assert digest(resumed) == digest(straight)
