"""`python -m chatmock` entry point."""

from chatmock.cli import main

raise SystemExit(main())
