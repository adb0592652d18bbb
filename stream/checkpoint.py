"""Atomic checkpoints of the whole state and the positions it belongs to.

A checkpoint is written to a temporary file, fsynced, renamed over its final name and the directory
fsynced: a crash leaves either the old or the new checkpoint, never half of one. Each file starts
with a header line ``SKEWSTREAM-CKPT <format> <sha256 of the payload> <hmac or ->``; a damaged file
(checksum mismatch, truncation) is reported and the previous good one used.

Trust model: the payload is a pickle, and unpickling can run code. Without a key, a checkpoint is
only as trustworthy as the directory it sits in. With a key (``checkpoint.signing_key_file`` or the
variable named by ``checkpoint.signing_key_env``), every checkpoint is signed with HMAC-SHA256 and a
checkpoint that is unsigned or whose signature does not match is *refused* — the service stops with
an error instead of unpickling it. Keep the key out of the checkpoint directory.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import pickle
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# 2 added the HMAC field; 3: the state of micro-batch builds (their pipeline, models and drift
# monitors are laid out differently, so older states are refused, never unpickled into them);
# 4: feature rows carry the raw values next to the standardised ones (trees learn on the raw);
# 5: a forest's naive-Bayes normalisers are per class, not per Gaussian (format 4 is converted on
# load, so a build from before can be upgraded in place; a build from before refuses format 5);
# 6: a forest's Gaussians are stored field by field, and each leaf keeps its log-odds (formats 4
# and 5 are converted on load; a build from before refuses format 6, which it would misread);
# 7: every score has a class decision beside its alert (the threshold, the prequential counts, the
# pending events and the learning runs carry it), and ring buffers live in ``stream.windows``
# (formats 4 to 6 load: their classes are found where they moved, their states are converted; a
# build from before refuses format 7, whose classes it would not find).
FORMAT = 7
OLDEST_READ = 4
_MAGIC = b"SKEWSTREAM-CKPT"
# Classes an older format names where they were: (module, name) -> the module they are in now.
_MOVED = {("stream.threshold", "Ring"): "stream.windows", ("stream.threshold", "Ranked"): "stream.windows"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(_MOVED.get((module, name), module), name)


class CheckpointError(Exception):
    """A checkpoint cannot be written or read; the message names the file and the setting."""


class Checkpointer:
    """Saves ``state`` dicts as numbered files in ``directory``, keeping the newest ``keep``."""

    def __init__(self, directory: Path, keep: int = 3, key: bytes | None = None) -> None:
        self.dir = Path(directory)
        self.keep = keep
        self.key = key
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointError(f"checkpoint.dir: cannot create {self.dir}: {exc.strerror}; point it at a writable directory") from None
        if not os.access(self.dir, os.W_OK):
            raise CheckpointError(f"checkpoint.dir: {self.dir} is not writable; point it at a writable directory")
        self.corrupt_total = 0

    def _files(self) -> list[Path]:
        return sorted(self.dir.glob("checkpoint-*.ckpt"), reverse=True)

    def save(self, state: dict[str, Any]) -> Path:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        digest = hashlib.sha256(payload).hexdigest().encode()
        signature = hmac.new(self.key, payload, hashlib.sha256).hexdigest().encode() if self.key else b"-"
        files = self._files()
        seq = int(files[0].stem.split("-")[1]) + 1 if files else 1
        final = self.dir / f"checkpoint-{seq:012d}.ckpt"
        tmp = final.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(b"%s %d %s %s\n" % (_MAGIC, FORMAT, digest, signature))
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, final)
        _fsync_dir(self.dir)
        for old in self._files()[self.keep :]:
            old.unlink(missing_ok=True)
        return final

    def load_latest(self) -> dict[str, Any] | None:
        """The newest intact checkpoint, or None if there is none at all."""
        files = self._files()
        for path in files:
            try:
                return self._read(path)
            except CheckpointRefused:
                raise
            except CheckpointError as exc:
                self.corrupt_total += 1
                log.error("%s; trying an older checkpoint", exc)
        if files:
            raise CheckpointError(f"checkpoint.dir: no intact checkpoint among {len(files)} in {self.dir}")
        return None

    def _read(self, path: Path) -> dict[str, Any]:
        data = path.read_bytes()
        header, _, payload = data.partition(b"\n")
        parts = header.split(b" ")
        if len(parts) not in (3, 4) or parts[0] != _MAGIC or not parts[1].isdigit():
            raise CheckpointError(f"checkpoint {path.name}: not a skewstream checkpoint")
        if int(parts[1]) < OLDEST_READ:
            raise CheckpointRefused(
                f"checkpoint {path.name}: written by an older skewstream (format {int(parts[1])}, this build "
                f"reads {OLDEST_READ} to {FORMAT}); finish with that build, or empty checkpoint.dir ({self.dir}) to start afresh"
            )
        if int(parts[1]) > FORMAT:  # not damage: refused, not skipped for an older one
            raise CheckpointRefused(
                f"checkpoint {path.name}: written by a newer skewstream (format {int(parts[1])}, this build reads "
                f"{OLDEST_READ} to {FORMAT}); run that build, or empty checkpoint.dir ({self.dir}) to start afresh"
            )
        if hashlib.sha256(payload).hexdigest().encode() != parts[2]:
            raise CheckpointError(f"checkpoint {path.name}: checksum mismatch (truncated or corrupted)")
        self._authenticate(path, payload, parts[3] if len(parts) == 4 else b"-")
        state: dict[str, Any] = _Unpickler(io.BytesIO(payload)).load()
        return state

    def _authenticate(self, path: Path, payload: bytes, signature: bytes) -> None:
        if self.key is None:
            return
        if signature == b"-":
            raise CheckpointRefused(
                f"checkpoint {path.name} is unsigned but checkpoint signing is configured: refusing to load it"
            )
        expected = hmac.new(self.key, payload, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(expected, signature):
            raise CheckpointRefused(
                f"checkpoint {path.name}: signature does not match the configured key (tampered, or another key): refusing to load it"
            )


class CheckpointRefused(CheckpointError):
    """Never unpickled, and no older checkpoint tried: unsigned or forged while a signing key is
    configured, or written in a format this build does not read."""


def state_digest(obj: Any) -> str:
    """A SHA-256 of an object graph's *values* (not of its pickle, whose bytes depend on object
    sharing): equal digests mean two states will behave the same. Used to prove resume equivalence."""
    h = hashlib.sha256()
    _feed(h, obj, set())
    return h.hexdigest()


def _feed(h: Any, obj: Any, active: set[int]) -> None:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
        return
    if id(obj) in active:  # a cycle back to an object being fed
        h.update(b"<cycle>;")
        return
    active.add(id(obj))
    try:
        _feed_container(h, obj, active)
    finally:
        active.discard(id(obj))


def _feed_container(h: Any, obj: Any, active: set[int]) -> None:
    import numpy as np

    h.update(type(obj).__qualname__.encode())
    if isinstance(obj, np.ndarray):
        h.update(f"{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _feed(h, key, active)
            _feed(h, value, active)
    elif isinstance(obj, (list, tuple, set, frozenset)) or type(obj).__name__ == "deque":
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        for item in items:
            _feed(h, item, active)
    elif hasattr(obj, "__getstate__") and not isinstance(obj, type):
        _feed(h, _state_of(obj), active)
    else:
        h.update(repr(obj).encode())


def _state_of(obj: Any) -> Any:
    if type(obj).__name__ == "Random":  # random.Random: its Mersenne Twister state
        return obj.getstate()
    if hasattr(obj, "bit_generator"):  # numpy Generator
        return obj.bit_generator.state
    state = obj.__getstate__()
    if isinstance(state, dict) and type(obj).__module__.startswith("river.proba"):
        # river's distributions carry an OS-seeded RNG used only by .sample(), which neither
        # learning nor scoring calls: it is not behaviour, so it is not part of the digest.
        state = {k: v for k, v in state.items() if k != "_rng"}
    return state if state is not None else repr(obj)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
