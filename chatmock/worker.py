"""Who this server process is (`/health`'s `worker`): apart from chatmock/supervisor.py,
which only `serve --workers` needs, so that a lone `serve` does not import it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

EXIT_CONFIG = 2
"""A worker's exit code for a setting only the app could check (a prompt file): its
supervisor stops rather than restart it (chatmock/supervisor.py)."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Who this server process is; a lone `serve` is worker 0 of 1."""

    index: int = 0
    count: int = 1
    restarts: int = 0
    supervisor: int = 0  # the supervisor's pid, 0 without one
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "index": self.index, "count": self.count, "pid": os.getpid(),
            "started_at": datetime.fromtimestamp(self.started_at, UTC).isoformat(
                timespec="seconds")}
        if self.supervisor:
            document.update(supervisor_pid=self.supervisor, restarts=self.restarts)
        return document
