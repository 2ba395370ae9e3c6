"""Files that must never be seen half-written, and locks shared between processes.

`write_private` writes a file atomically (temporary file in the same folder,
fsync, rename, fsync of the folder) with mode 0600 in a folder of mode 0700:
readers see the old content or the new, never a mix, and nobody else can read
tokens. `file_lock` is an exclusive advisory lock (flock) on a side file, taken
without blocking the event loop; `file_lock_sync` takes one for a few
milliseconds' work outside of it, or tells that another process holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import trio

LOCK_POLL_SECONDS = 0.05


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, readable by its owner only."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), 0o600)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def write_private_json(path: Path, document: Any) -> None:
    write_private(path, (json.dumps(document, indent=2) + "\n").encode())


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.asynccontextmanager
async def file_lock(path: Path, wait_seconds: float = 30.0) -> AsyncIterator[None]:
    """Hold an exclusive flock on `path` (created 0600); TimeoutError after `wait_seconds`."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with trio.fail_after(wait_seconds):
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await trio.sleep(LOCK_POLL_SECONDS)
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    except trio.TooSlowError:
        raise TimeoutError(f"could not lock {path} within {wait_seconds:g} s") from None
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def file_lock_sync(path: Path, *, wait: bool) -> Iterator[bool]:
    """Hold an exclusive flock on `path` (created 0600): yields True once held. Without
    `wait`, yields False at once if another process holds it (nothing is locked then)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(modification time in ns, size) of a file, None when it cannot be read: a cheap
    way to tell whether another process rewrote it since it was last read."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
