from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from stream.checkpoint import Checkpointer, CheckpointError, CheckpointRefused, state_digest


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


KEY = b"0123456789abcdef-secret"


def forge(path: Path, payload: bytes) -> None:
    """Replace the payload and fix the checksum, as an attacker with write access could."""
    import hashlib

    header = path.read_bytes().split(b"\n", 1)[0].split(b" ")
    header[2] = hashlib.sha256(payload).hexdigest().encode()
    path.write_bytes(b" ".join(header) + b"\n" + payload)


def test_signed_checkpoints_load_with_their_key(tmp_path: Path) -> None:
    Checkpointer(tmp_path, key=KEY).save({"i": 1})
    assert Checkpointer(tmp_path, key=KEY).load_latest() == {"i": 1}
    assert Checkpointer(tmp_path).load_latest() == {"i": 1}  # no key configured: checksum only


@pytest.mark.parametrize("attack", ["unsigned", "forged", "other_key"])
def test_with_a_key_unsigned_or_tampered_checkpoints_are_refused(tmp_path: Path, attack: str) -> None:
    import pickle

    from stream.checkpoint import CheckpointRefused

    Checkpointer(tmp_path, key=KEY).save({"i": 1})
    if attack == "unsigned":
        Checkpointer(tmp_path).save({"i": 2})
    elif attack == "forged":
        newest = Checkpointer(tmp_path, key=KEY).save({"i": 2})
        forge(newest, pickle.dumps({"i": "evil"}))
    else:
        Checkpointer(tmp_path, key=b"another-key-0123456789").save({"i": 2})
    with pytest.raises(CheckpointRefused, match="refusing to load"):
        Checkpointer(tmp_path, key=KEY).load_latest()


def test_key_settings_fail_with_the_setting_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.config import CheckpointSettings, ConfigError, checkpoint_key

    monkeypatch.setenv("SKEWSTREAM_CHECKPOINT_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        checkpoint_key(CheckpointSettings())
    with pytest.raises(ConfigError, match="checkpoint.signing_key_file"):
        checkpoint_key(CheckpointSettings(signing_key_file=tmp_path / "missing"))
    (tmp_path / "key").write_bytes(KEY + b"\n")
    assert checkpoint_key(CheckpointSettings(signing_key_file=tmp_path / "key")) == KEY


def test_a_checkpoint_of_an_older_build_is_refused_with_what_to_do(tmp_path: Path) -> None:
    checkpointer = Checkpointer(tmp_path, keep=2)
    path = checkpointer.save({"x": 1})
    header, _, payload = path.read_bytes().partition(b"\n")
    magic, _, rest = header.split(b" ", 2)
    path.write_bytes(magic + b" 2 " + rest + b"\n" + payload)  # as the builds before micro-batches wrote them
    with pytest.raises(CheckpointRefused, match="older skewstream .* checkpoint.dir"):
        Checkpointer(tmp_path, keep=2).load_latest()


@pytest.mark.parametrize(("written", "readable"), [(4, True), (5, True), (6, True), (7, True), (8, False)])
def test_formats_from_the_oldest_read_to_this_one_load(tmp_path: Path, written: int, readable: bool) -> None:
    path = Checkpointer(tmp_path, keep=2).save({"x": 1})
    header, _, payload = path.read_bytes().partition(b"\n")
    magic, _, rest = header.split(b" ", 2)
    path.write_bytes(magic + b" %d " % written + rest + b"\n" + payload)
    if readable:
        assert Checkpointer(tmp_path, keep=2).load_latest()["x"] == 1  # type: ignore[index]
    else:
        with pytest.raises(CheckpointRefused, match="newer skewstream .* checkpoint.dir"):
            Checkpointer(tmp_path, keep=2).load_latest()


def test_a_checkpoint_naming_classes_where_they_were_loads(tmp_path: Path) -> None:
    """Format 6 named the ring buffers ``stream.threshold.Ring`` and ``.Ranked``; they moved."""
    import pickle

    from stream.windows import Ranked, Ring

    ring = Ring(4)
    ring.push_many(np.array([0.5, 0.25]), np.array([1, 0]))
    payload = pickle.dumps({"ring": ring, "ranked": Ranked(2, 4)}, protocol=2)  # names in plain text
    old = payload.replace(b"cstream.windows\n", b"cstream.threshold\n")
    assert old.count(b"cstream.threshold\n") == 2
    path = Checkpointer(tmp_path, keep=2).save({"x": 1})
    header, _, _ = path.read_bytes().partition(b"\n")
    magic, _, _, signature = header.split(b" ")
    path.write_bytes(b"%s 6 %s %s\n" % (magic, hashlib.sha256(old).hexdigest().encode(), signature) + old)
    state = Checkpointer(tmp_path, keep=2).load_latest()
    assert state is not None and state["ring"].filled()[0].tolist() == [0.5, 0.25] and state["ranked"].shape == (2, 4)


def test_settings_saved_by_an_older_build_take_defaults_for_the_settings_added_since() -> None:
    import pickle

    from stream.config import ModelSettings, load_settings

    saved = load_settings(None, model={"kind": "bagging", "grace_period": 50}).model
    state = saved.__getstate__()
    del state["__dict__"]["tie_threshold"], state["__dict__"]["bagging_rate"]  # added after that build
    old = ModelSettings.__new__(ModelSettings)
    old.__setstate__(state)
    assert old.grace_period == 50 and old.kind == "bagging"  # what it ran with stays
    assert old.tie_threshold == ModelSettings().tie_threshold and old.bagging_rate == 1.0
    assert pickle.loads(pickle.dumps(old)) == old
