"""Memory figures of a process from ``/proc/<pid>/status`` (Linux), for the benchmarks and tests."""

from __future__ import annotations

from pathlib import Path


def status_mb(field: str, pid: int | str = "self") -> float:
    """``field`` (``VmRSS``, ``VmHWM``, ...) of process ``pid`` in MB; NaN where there is no such line."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")
