"""chatmock.supervisor with stand-in workers, each supervisor in a process of its own (it
blocks signals and forks, which a test runner's process with threads must not do)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, signal, sys, time
from chatmock.supervisor import EXIT_CONFIG, Supervisor

log, behaviour = sys.argv[1], sys.argv[2]

def run_worker(inherited):
    with open(log, "a") as out:
        out.write(f"{inherited.info.index} {inherited.info.restarts} {time.monotonic()}\\n")
    if behaviour == "dies at once":
        if inherited.info.restarts == 3:
            os.kill(inherited.info.supervisor, signal.SIGTERM)
            return 0
        return 1
    if inherited.info.index == 1:
        time.sleep(0.2)
        return EXIT_CONFIG
    time.sleep(30)  # until the supervisor's SIGTERM ends it
    return 0

sys.exit(Supervisor(int(sys.argv[3]), [], run_worker).run())
"""


def supervise(tmp_path: Path, behaviour: str, workers: int) -> tuple[int, list[list[float]]]:
    log = tmp_path / "starts"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(log), behaviour, str(workers)],
                            timeout=60, capture_output=True)
    starts = [[float(field) for field in line.split()] for line in log.read_text().splitlines()]
    return result.returncode, starts


def test_a_worker_that_dies_at_once_comes_back_later_each_time(tmp_path: Path) -> None:
    code, starts = supervise(tmp_path, "dies at once", 1)
    assert code == 0
    assert [restarts for _, restarts, _ in starts] == [0, 1, 2, 3]
    gaps = [later[2] - earlier[2] for earlier, later in itertools.pairwise(starts)]
    assert 0.5 <= gaps[0] < 1.0 <= gaps[1] < 2.0 <= gaps[2] < 4.0


def test_a_configuration_error_in_one_worker_stops_them_all(tmp_path: Path) -> None:
    code, starts = supervise(tmp_path, "config error", 2)
    assert code == 2
    assert sorted(index for index, _, _ in starts) == [0, 1]  # never restarted
