"""`python -m chatmock`, and the `chatmock` command (pyproject's entry point)."""

from __future__ import annotations

import gc
import sys


def run() -> int:
    """Run the command line with the garbage collector off until start-up is over.

    Importing trio and chatmock and building the app allocate little but what lives
    as long as the process (modules, classes, functions, tables), so collections
    during start-up free nothing: ~55 of them took ~9 ms, and turning the collector
    back on after the imports only trades them for one as long (bench/RESULTS.md).
    `serve` turns it on once it answers, after collecting and freezing what start-up
    left (`cli.tune_gc`); every other command turns it on before it runs (`cli.main`)."""
    gc.disable()
    from chatmock.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(run())
