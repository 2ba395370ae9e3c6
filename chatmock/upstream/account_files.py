"""The pool's accounts as their files say, read again while serving.

`chatmock login --account NAME` writes `<home>/accounts/NAME.json` and
`chatmock logout NAME` removes it, in another process, while `serve` runs.
Every file written there is renamed into place (atomic writes), which changes
the directory's modification time, so `AccountFiles.changed` stats that one
directory at most once every `RECHECK_SECONDS` and lists it again only when
its time moved: an added account joins the pool, a removed one leaves it (its
conversations move on their next turn, like after a usage limit). Accounts
that stay keep their objects (credentials, usage figures) as they are. A
default `auth.json` that appears or disappears elsewhere (the Codex CLI's) is
seen with the next change of the directory, or at the next start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from chatmock.auth.accounts import AccountFile
from chatmock.fileio import file_stamp
from chatmock.upstream.accounts import Account

log = logging.getLogger("chatmock.accounts")

RECHECK_SECONDS = 1.0


class AccountFiles:
    """Where an `AccountPool`'s accounts come from; see the module docstring."""

    def __init__(self, folder: Path, files: Callable[[], Sequence[AccountFile]],
                 make: Callable[[AccountFile], Account], *,
                 every: float = RECHECK_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.folder = folder
        self._files = files
        self._make = make
        self._every = every
        self._clock = clock
        self._stamp = file_stamp(folder)
        self._checked = clock()

    def changed(self, current: Sequence[Account]) -> list[Account] | None:
        """The accounts now, when the files changed them since the last look; else None."""
        now = self._clock()
        if now - self._checked < self._every:
            return None
        self._checked = now
        stamp = file_stamp(self.folder)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        files = self._files()
        if [file.name for file in files] == [account.name for account in current]:
            return None
        known = {account.name: account for account in current}
        accounts = [known.get(file.name) or self._make(file) for file in files]
        added = sorted({file.name for file in files} - set(known))
        removed = sorted(set(known) - {file.name for file in files})
        log.info("account pool changed on disk:%s%s; now %s",
                 f" added {', '.join(added)}" if added else "",
                 f" removed {', '.join(removed)}" if removed else "",
                 ", ".join(account.name for account in accounts))
        return accounts
