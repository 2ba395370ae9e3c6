"""The dialects' options are the settings' own values (dialects/options.py)."""

from __future__ import annotations

import dataclasses

from chatmock.config import Settings
from chatmock.dialects.options import Options


def test_the_defaults_are_the_settings_defaults() -> None:
    assert Options.of(Settings()) == Options()


def test_each_option_is_the_setting_of_its_name() -> None:
    changed = Settings(debug_model="gpt-5.2", reasoning_effort="high",
                       reasoning_summary="none", fast_mode=True, enable_web_search=True,
                       anthropic_models=(("opus", "gpt-5.5"),))
    options = Options.of(changed)
    for field in dataclasses.fields(Options):
        if field.name == "providers":  # derived: the built-in names and --upstream's
            continue
        assert getattr(options, field.name) == getattr(changed, field.name), field.name
    assert options != Options()


def test_the_provider_prefixes_are_the_builtin_and_upstream_names() -> None:
    settings = Settings(upstreams=(("local", "http://127.0.0.1:1/v1", ""),))
    options = Options.of(settings)
    assert options.providers[-1] == "local" and "xai" in options.providers
    assert options.names_provider("local/qwen3") and not options.names_provider("qwen3")
    assert not options.names_provider("local/")
