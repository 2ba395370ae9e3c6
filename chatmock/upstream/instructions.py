"""Base instructions: what goes upstream as `instructions` when a client sends none.

`--base-instructions` decides, once at start-up:

* `none` (the default): nothing. The backend accepts requests without
  instructions today (spec: upstream.md §6), and a client that wants a system
  prompt sends one;
* `codex`: the prompts shipped in `prompts/` (`prompt.md`, and
  `prompt_codex_model.md` for models whose slug contains `codex`), for clients
  that send no system prompt at all, should the backend require one again or
  if the Codex agent behaviour is wanted;
* a file path: that file's text, for every model.

The texts are read here, once; `CodexBackend.finish_payload` puts them into a
payload that has no `instructions` of its own (after the dialect's mapping:
a chat `system` message or Anthropic `system` counts as instructions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from chatmock.errors import ConfigError

_GENERAL = "prompt.md"
_CODEX_MODELS = "prompt_codex_model.md"


@dataclass(frozen=True, slots=True)
class BaseInstructions:
    general: str = ""
    codex_models: str = ""  # for slugs containing "codex"; `general` when empty

    def for_model(self, slug: str) -> str:
        """The text for `slug` ('' for none)."""
        if self.codex_models and "codex" in slug.lower():
            return self.codex_models
        return self.general


NO_INSTRUCTIONS = BaseInstructions()


def load_base_instructions(setting: str) -> BaseInstructions:
    """The texts `--base-instructions` names; ConfigError if they cannot be read."""
    if setting == "none":
        return NO_INSTRUCTIONS
    if setting == "codex":
        from importlib import resources  # ~1 ms of import, for this setting only

        prompts = resources.files("chatmock.prompts")
        return BaseInstructions(_text((prompts / _GENERAL).read_text, _GENERAL),
                                _text((prompts / _CODEX_MODELS).read_text, _CODEX_MODELS))
    path = Path(setting).expanduser()
    return BaseInstructions(_text(path.read_text, str(path)))


def _text(read: Callable[..., str], name: str) -> str:
    try:
        text = read(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--base-instructions: cannot read {name}: {error}") from None
    if not text:
        raise ConfigError(f"--base-instructions: {name} is empty")
    return text
