"""The model catalog: which upstream slugs exist, their aliases and efforts.

Name resolution (`resolve`) checks known slugs before it looks for an effort
suffix, so `gpt-5.1-codex-max` stays itself although `max` is an effort word,
and unknown names travel upstream unchanged (the backend has the final say).
Accepted request forms: `slug`, `alias`, and either followed by `-effort`,
`_effort` or `:effort`; an Ollama-style `:latest` tag on a known model is
dropped.

The catalog is either the static table below or one built from the backend's
`GET /models` answer (`catalog_from_discovery`, spec: upstream.md §9.1); both
resolve names the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chatmock.config import EFFORTS

ALL_EFFORTS = EFFORTS
DEFAULT_MODEL = "gpt-5.4"
CREATED = 1_754_006_400  # 2025-08-01: a fixed `created` for the static list
UNRANKED = 1_000_000  # sort key of a discovered model without `priority`


@dataclass(frozen=True, slots=True)
class ModelSpec:
    slug: str
    efforts: tuple[str, ...]
    variants: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    priority_tier: bool = False
    upstream: str = ""
    display_name: str = ""  # from discovery; the Anthropic model list shows it

    @property
    def upstream_slug(self) -> str:
        return self.upstream or self.slug


def _spec(slug: str, efforts: str, variants: str = "", aliases: str = "",
          *, fast: bool = False, upstream: str = "") -> ModelSpec:
    return ModelSpec(slug, tuple(efforts.split()), tuple(variants.split()),
                     tuple(aliases.split()), fast, upstream)


_FOUR = "low medium high xhigh"
_FOUR_VARIANTS = "xhigh high medium low"
STATIC_MODELS: tuple[ModelSpec, ...] = (
    _spec("gpt-5", " ".join(ALL_EFFORTS), "high medium low minimal", "gpt5 gpt-5-latest",
          fast=True),
    _spec("gpt-5.1", "low medium high", "high medium low", fast=True),
    _spec("gpt-5.2", _FOUR, _FOUR_VARIANTS, "gpt5.2 gpt-5.2-latest", fast=True),
    _spec("gpt-5.4", "none " + _FOUR, _FOUR_VARIANTS + " none", "gpt5.4 gpt-5.4-latest",
          fast=True),
    _spec("gpt-5.4-mini", _FOUR, _FOUR_VARIANTS, "gpt5.4-mini gpt-5.4-mini-latest"),
    _spec("gpt-5.5", "none " + _FOUR, _FOUR_VARIANTS + " none", "gpt5.5 gpt-5.5-latest"),
    _spec("gpt-5.6-sol", _FOUR + " max ultra", _FOUR + " max ultra",
          "gpt5.6-sol gpt-5.6-sol-latest", fast=True),
    _spec("gpt-5.6-terra", _FOUR + " max ultra", _FOUR + " max ultra",
          "gpt5.6-terra gpt-5.6-terra-latest", fast=True),
    _spec("gpt-5.6-luna", _FOUR + " max", _FOUR + " max", "gpt5.6-luna gpt-5.6-luna-latest",
          fast=True),
    _spec("gpt-5.3-codex", _FOUR, _FOUR_VARIANTS, "gpt5.3-codex gpt-5.3-codex-latest"),
    _spec("gpt-5.3-codex-spark", _FOUR, _FOUR_VARIANTS,
          "gpt5.3-codex-spark gpt-5.3-codex-spark-latest"),
    _spec("gpt-5-codex", " ".join(ALL_EFFORTS), "high medium low",
          "gpt5-codex gpt-5-codex-latest", fast=True),
    _spec("gpt-5.2-codex", _FOUR, _FOUR_VARIANTS, "gpt5.2-codex gpt-5.2-codex-latest"),
    _spec("gpt-5.1-codex", "low medium high", "high medium low", fast=True),
    _spec("gpt-5.1-codex-max", _FOUR, _FOUR_VARIANTS),
    _spec("gpt-5.1-codex-mini", "low medium high"),
    _spec("codex-mini", " ".join(ALL_EFFORTS), "", "codex codex-mini-latest",
          upstream="codex-mini-latest"),
)


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a requested model name means upstream."""

    requested: str
    slug: str
    effort: str | None
    spec: ModelSpec | None


class Catalog:
    """Lookup tables over a list of model specs."""

    def __init__(self, specs: tuple[ModelSpec, ...] = STATIC_MODELS) -> None:
        self.specs = specs
        self._by_name: dict[str, ModelSpec] = {}
        # Slugs first: an alias must never hide another model's own slug.
        for spec in specs:
            for name in (spec.slug, spec.upstream_slug):
                self._by_name.setdefault(name.lower(), spec)
        for spec in specs:
            for name in spec.aliases:
                self._by_name.setdefault(name.lower(), spec)

    def lookup(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name.lower())

    def resolve(self, requested: str | None, debug_model: str = "") -> Resolved:
        name = (debug_model or requested or "").strip() or DEFAULT_MODEL
        spec = self.lookup(name)
        if spec is not None:
            return Resolved(name, spec.upstream_slug, None, spec)
        base, effort = split_effort(name)
        if base.lower().endswith(":latest"):
            base = base[: -len(":latest")]
        spec = self.lookup(base)
        if spec is None:
            return Resolved(name, name, None, None)
        return Resolved(name, spec.upstream_slug, effort, spec)

    def allowed_efforts(self, slug: str) -> tuple[str, ...]:
        spec = self.lookup(slug)
        return spec.efforts if spec else ALL_EFFORTS

    def supports_priority(self, slug: str) -> bool:
        spec = self.lookup(slug)
        return bool(spec and spec.priority_tier)

    def listed_ids(self, expose_variants: bool) -> list[str]:
        ids: list[str] = []
        for spec in self.specs:
            ids.append(spec.slug)
            if expose_variants:
                ids.extend(f"{spec.slug}-{effort}" for effort in spec.variants)
        return ids


def split_effort(name: str) -> tuple[str, str | None]:
    """`gpt-5.4-high` → (`gpt-5.4`, `high`); `:effort` wins over `-`/`_` suffixes."""
    lowered = name.lower()
    head, colon, tail = lowered.rpartition(":")
    if colon and tail in ALL_EFFORTS:
        return name[: len(head)], tail
    for effort in ALL_EFFORTS:
        for separator in ("-", "_"):
            suffix = separator + effort
            if lowered.endswith(suffix) and len(lowered) > len(suffix):
                return name[: -len(suffix)], effort
    return name, None


STATIC_CATALOG = Catalog()


def catalog_from_discovery(document: Any) -> Catalog | None:
    """The catalog a `GET /models` answer describes, or None if it lists no model.

    Only `visibility == "list"` entries count (the protocol also has `hide` and
    `none`), ordered by `priority` (stable, so ties keep the backend's order).
    None lets the caller keep the catalog it has instead of an empty one.
    """
    entries = document.get("models") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return None
    listed = [entry for entry in entries
              if isinstance(entry, dict) and entry.get("visibility") == "list"]
    specs: dict[str, ModelSpec] = {}
    for entry in sorted(listed, key=_rank):
        spec = spec_from_discovery(entry)
        if spec is not None:
            specs.setdefault(spec.slug.lower(), spec)
    return Catalog(tuple(specs.values())) if specs else None


def spec_from_discovery(entry: dict[str, Any]) -> ModelSpec | None:
    """One discovered model; aliases come from the static table when it knows the slug."""
    slug = entry.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        return None
    slug = slug.strip()
    known = STATIC_CATALOG.lookup(slug)
    levels = _names(entry.get("supported_reasoning_levels"), "effort")
    variants = tuple(level for level in levels if level in ALL_EFFORTS)
    # With no effort we know, keep a set the request builders can choose from.
    efforts = levels if variants else (known.efforts if known else ALL_EFFORTS)
    display = entry.get("display_name")
    return ModelSpec(slug, efforts, variants, _static_aliases(slug, known),
                     "priority" in _names(entry.get("service_tiers"), "id"),
                     display_name=display.strip() if isinstance(display, str) else "")


def _rank(entry: dict[str, Any]) -> float:
    value = entry.get("priority")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return float(UNRANKED)


def _names(items: Any, key: str) -> tuple[str, ...]:
    """Lower-cased strings of a list of plain strings or objects with `key`; deduplicated."""
    if not isinstance(items, list):
        return ()
    found: dict[str, None] = {}
    for item in items:
        value = item.get(key) if isinstance(item, dict) else item
        if isinstance(value, str) and value.strip():
            found.setdefault(value.strip().lower(), None)
    return tuple(found)


def _static_aliases(slug: str, known: ModelSpec | None) -> tuple[str, ...]:
    if known is None:
        return ()
    names = dict.fromkeys((known.slug, known.upstream_slug, *known.aliases))
    return tuple(name for name in names if name.lower() != slug.lower())
