"""What the dialects read of chatmock's settings, and nothing else.

A translation depends on six of the server's many options; taking this small
frozen value instead of the whole `Settings` keeps that visible, and lets a
test (or another caller) build one without a server's configuration. Routes
make it per request with `Options.of(app.settings)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chatmock.config import BUILTIN_PROVIDERS
from chatmock.option_values import DEFAULT_ANTHROPIC_MODELS, ModelMap

if TYPE_CHECKING:
    from chatmock.config import Settings


@dataclass(frozen=True, slots=True)
class Options:
    debug_model: str = ""  # send this model whatever the request names
    reasoning_effort: str = "medium"  # when neither the request nor the model name says
    reasoning_summary: str = "auto"
    fast_mode: bool = False  # ask for priority processing unless the request says
    enable_web_search: bool = False  # add the web_search tool unless the request says
    anthropic_models: ModelMap = DEFAULT_ANTHROPIC_MODELS  # Claude family -> model
    providers: tuple[str, ...] = BUILTIN_PROVIDERS  # `provider/model` prefixes of upstreams

    @classmethod
    def of(cls, settings: Settings) -> Options:
        return cls(settings.debug_model, settings.reasoning_effort, settings.reasoning_summary,
                   settings.fast_mode, settings.enable_web_search, settings.anthropic_models,
                   provider_names(settings))

    def names_provider(self, model: str) -> bool:
        """Whether `model` is a `provider/model` name of another upstream (passed as is)."""
        head, slash, rest = model.partition("/")
        return bool(slash and rest) and head in self.providers


def provider_names(settings: Settings) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*BUILTIN_PROVIDERS, *(name for name, _, _ in settings.upstreams)]))
