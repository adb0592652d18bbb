"""mypy --strict on stream and connectors (the house style's typing rule, enforced)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_mypy_strict_passes() -> None:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
