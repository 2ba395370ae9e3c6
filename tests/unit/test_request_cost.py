"""`bench/request_cost.py` still runs against the code it measures: every step once,
untimed (its figures are in bench/RESULTS.md, never checked here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_every_step_runs_on_the_fakes_answer() -> None:
    done = subprocess.run([sys.executable, str(BENCH / "request_cost.py"), "--once"],
                          cwd=BENCH, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    steps = [line.split("  ")[1].strip() for line in done.stdout.splitlines()]
    assert steps[0] == "client request head (h1fast)"
    assert "SSE body decoded and collected" in steps
    assert steps[-1] == "sum"
