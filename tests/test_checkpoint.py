from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stream.checkpoint import Checkpointer, CheckpointError, state_digest


def test_save_load_keeps_the_newest_n(tmp_path: Path) -> None:
    ck = Checkpointer(tmp_path, keep=2)
    for i in range(4):
        ck.save({"i": i, "a": np.arange(3) * i})
    assert len(list(tmp_path.glob("checkpoint-*.ckpt"))) == 2
    state = ck.load_latest()
    assert state is not None and state["i"] == 3
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_checkpoint_is_detected_and_the_previous_one_used(tmp_path: Path, damage: str) -> None:
    ck = Checkpointer(tmp_path, keep=3)
    ck.save({"i": 1})
    newest = ck.save({"i": 2})
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 5]
    else:
        data[-3] ^= 0x40
    newest.write_bytes(bytes(data))
    state = ck.load_latest()
    assert state == {"i": 1}
    assert ck.corrupt_total == 1


def test_no_intact_checkpoint_is_an_error_not_a_silent_restart(tmp_path: Path) -> None:
    ck = Checkpointer(tmp_path)
    ck.save({"i": 1}).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no intact checkpoint"):
        ck.load_latest()


def test_unwritable_directory_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="checkpoint.dir"):
        Checkpointer(blocker / "sub")


def test_state_digest_sees_values_not_identity() -> None:
    shared = [1.0]
    assert state_digest({"a": shared, "b": shared}) == state_digest({"a": [1.0], "b": [1.0]})
    assert state_digest({"a": np.zeros(2)}) != state_digest({"a": np.ones(2)})
