"""The base instructions chatmock can send (`--base-instructions codex`); see README.md here."""
