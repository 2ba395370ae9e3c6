"""chatmock.catalog: the static catalog and model-name resolution."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.catalog import ALL_EFFORTS, DEFAULT_MODEL, STATIC_MODELS, Catalog, split_effort

CATALOG = Catalog()


def resolved(name: str | None, debug_model: str = "") -> tuple[str, str | None]:
    result = CATALOG.resolve(name, debug_model)
    return result.slug, result.effort


@pytest.mark.parametrize("spec", STATIC_MODELS, ids=lambda s: s.slug)
def test_every_known_slug_and_alias_resolves_to_itself(spec: object) -> None:
    from chatmock.catalog import ModelSpec
    assert isinstance(spec, ModelSpec)
    for name in (spec.slug, *spec.aliases, spec.slug.upper()):
        result = CATALOG.resolve(name)
        assert (result.slug, result.effort, result.spec) == (spec.upstream_slug, None, spec)
        assert result.requested == name


@pytest.mark.parametrize(("name", "expected"), [
    ("gpt5", ("gpt-5", None)),
    ("gpt-5-latest", ("gpt-5", None)),
    ("gpt5.4-mini", ("gpt-5.4-mini", None)),
    ("codex", ("codex-mini-latest", None)),
    ("codex-mini", ("codex-mini-latest", None)),
    ("codex-mini-latest", ("codex-mini-latest", None)),
    ("gpt-5.4-high", ("gpt-5.4", "high")),
    ("gpt-5.4_high", ("gpt-5.4", "high")),
    ("gpt-5.4:high", ("gpt-5.4", "high")),
    ("GPT-5.4:High", ("gpt-5.4", "high")),
    ("gpt-5.4-xhigh", ("gpt-5.4", "xhigh")),
    ("gpt-5.4-none", ("gpt-5.4", "none")),
    ("gpt5.4-mini-low", ("gpt-5.4-mini", "low")),
    ("gpt-5-minimal", ("gpt-5", "minimal")),
    ("codex-high", ("codex-mini-latest", "high")),
    ("gpt-5.1-codex-max", ("gpt-5.1-codex-max", None)),  # "max" is an effort word, not here
    ("gpt-5.1-codex-max-high", ("gpt-5.1-codex-max", "high")),
    ("gpt-5.1-codex-max:xhigh", ("gpt-5.1-codex-max", "xhigh")),
    ("gpt-5.6-sol-max", ("gpt-5.6-sol", "max")),
    ("gpt-5.6-sol-ultra", ("gpt-5.6-sol", "ultra")),
    ("gpt-5.6-terra_max", ("gpt-5.6-terra", "max")),
    ("gpt-5.4:latest", ("gpt-5.4", None)),
    ("gpt5.4:latest", ("gpt-5.4", None)),
    ("  gpt-5.4  ", ("gpt-5.4", None)),
])
def test_resolve(name: str, expected: tuple[str, str | None]) -> None:
    assert resolved(name) == expected


@pytest.mark.parametrize("name", ["My-Custom-Model", "foo-high", "o4-mini", "Foo:High",
                                  "mystery:latest", "gpt-6", "GPT-7-Turbo"])
def test_unknown_names_pass_through_unchanged(name: str) -> None:
    result = CATALOG.resolve(name)
    assert (result.slug, result.effort, result.spec) == (name, None, None)


@pytest.mark.parametrize("name", [None, "", "   "])
def test_empty_means_the_default(name: str | None) -> None:
    assert resolved(name) == (DEFAULT_MODEL, None)


def test_debug_model_wins() -> None:
    assert resolved("gpt-5.4-high", debug_model="gpt-5.5") == ("gpt-5.5", None)
    assert resolved(None, debug_model="gpt-5.2-low") == ("gpt-5.2", "low")
    assert resolved("x", debug_model="custom") == ("custom", None)
    assert CATALOG.resolve("gpt-5.4", "gpt-5.5").requested == "gpt-5.5"


def test_split_effort() -> None:
    assert split_effort("gpt-5.4-high") == ("gpt-5.4", "high")
    assert split_effort("Model:LOW") == ("Model", "low")
    assert split_effort("a-high:medium") == ("a-high", "medium")  # ":" wins
    assert split_effort("high") == ("high", None)
    assert split_effort("-high") == ("-high", None)
    assert split_effort("x-highest") == ("x-highest", None)
    assert split_effort("x:") == ("x:", None)


@given(base=st.text(alphabet="abcdefgh.-_", min_size=1, max_size=12),
       effort=st.sampled_from(ALL_EFFORTS), separator=st.sampled_from(["-", "_", ":"]))
def test_split_effort_round_trip(base: str, effort: str, separator: str) -> None:
    assert split_effort(base + separator + effort) == (base, effort)


def test_allowed_efforts_and_priority() -> None:
    assert CATALOG.allowed_efforts("gpt-5.4") == ("none", "low", "medium", "high", "xhigh")
    assert CATALOG.allowed_efforts("codex-mini-latest") == ALL_EFFORTS
    assert CATALOG.allowed_efforts("unknown") == ALL_EFFORTS
    assert CATALOG.supports_priority("gpt-5.4") is True
    assert CATALOG.supports_priority("gpt-5.4-mini") is False
    assert CATALOG.supports_priority("unknown") is False


def test_listed_ids_without_variants() -> None:
    ids = CATALOG.listed_ids(expose_variants=False)
    assert ids == [spec.slug for spec in STATIC_MODELS]
    assert ids[:4] == ["gpt-5", "gpt-5.1", "gpt-5.2", "gpt-5.4"]
    assert "codex-mini" in ids and "gpt-5.4-high" not in ids


def test_listed_ids_with_variants() -> None:
    ids = CATALOG.listed_ids(expose_variants=True)
    start = ids.index("gpt-5.4")
    assert ids[start:start + 6] == ["gpt-5.4", "gpt-5.4-xhigh", "gpt-5.4-high", "gpt-5.4-medium",
                                    "gpt-5.4-low", "gpt-5.4-none"]
    assert "gpt-5-minimal" in ids and "gpt-5.6-sol-ultra" in ids
    assert ids[ids.index("codex-mini") + 1:] == []  # no variants
    assert len(ids) == len(set(ids))
    assert "gpt-5.1-codex-mini-low" not in ids
    # Every listed variant resolves back to its model and effort.
    for name in ids:
        result = CATALOG.resolve(name)
        assert result.spec is not None, name
        if result.effort is not None:
            assert result.effort in result.spec.efforts, name


def test_custom_catalog() -> None:
    from chatmock.catalog import ModelSpec
    catalog = Catalog((ModelSpec("m-1", ("low",), ("low",), ("alias",)),))
    assert catalog.resolve("alias-low").slug == "m-1"
    assert catalog.resolve("alias-low").effort == "low"
    assert catalog.listed_ids(True) == ["m-1", "m-1-low"]
    assert catalog.resolve("gpt-5.4").spec is None
