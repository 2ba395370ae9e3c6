"""`python -m chatmock`, and the `chatmock` command (pyproject's entry point)."""

from __future__ import annotations

import gc
import sys


def run() -> int:
    """Import the command line with the garbage collector off, then run it.

    Importing trio and chatmock allocates only what lives as long as the process
    (modules, classes, functions, tables): the ~70 collections that would run
    meanwhile free nothing and cost ~5-10 ms of start-up (bench/RESULTS.md). The
    collector is back on before any command runs; `serve` then collects once and
    freezes what start-up left (`cli.tune_gc`)."""
    gc.disable()
    try:
        from chatmock.cli import main
    finally:
        gc.enable()
    return main()


if __name__ == "__main__":
    sys.exit(run())
