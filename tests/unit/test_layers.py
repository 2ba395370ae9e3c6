"""The layers hold: every import in chatmock/, read with `ast`, against the rules below.

    leaves     errors, jsonbytes, logs, fileio, option_values, config, catalog, turns,
               redis_url: plain values and helpers every layer uses; they import only
               each other
    dialects/  sans-I/O translation: no trio, h11, h2, wsproto, sockets, threads or
               files; none of server/, net/, routes/, upstream/, state/
    state/, upstream/   never routes/ (routes call them, not the other way round)
    server/    never dialects/: the route table hands the router each dialect's errors
    testing/   the fakes; nothing else in chatmock imports them
    and each lower layer imports only the layers `BELOW` lists (the README's table)

Imports inside functions and under `TYPE_CHECKING` count as well: a deferred import
is still a dependency. The walk sees `import a.b` and `from a import b` (absolute;
the package uses no relative imports, which is checked too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "chatmock"
LEAVES = frozenset({"errors", "jsonbytes", "logs", "fileio", "option_values", "config",
                    "catalog", "turns", "redis_url"})
IO_MODULES = ("trio", "h11", "h2", "hpack", "wsproto", "socket", "ssl", "selectors",
              "asyncio", "threading", "sqlite3")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> Iterator[str]:
    """Every module an import statement names (with `from a import b`, also `a.b`:
    `b` may be a submodule)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "chatmock uses absolute imports only"
            assert node.module is not None
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    return {module_name(path): set(imported(ast.parse(path.read_text(), str(path))))
            for path in ROOT.rglob("*.py")}


GRAPH = import_graph()


def layer(module: str) -> str:
    """`dialects` for chatmock.dialects.chat, `config` for chatmock.config."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def offences(importers: str | frozenset[str], *forbidden: str) -> list[str]:
    """`importer -> imported` for each import of a `forbidden` package by a module of
    the `importers` layer(s)."""
    wanted = {importers} if isinstance(importers, str) else importers
    return sorted(f"{module} -> {name}" for module, names in GRAPH.items()
                  if layer(module) in wanted for name in names if within(name, *forbidden))


def chatmock(*layers: str) -> tuple[str, ...]:
    return tuple(f"chatmock.{name}" for name in layers)


def test_the_walk_sees_the_tree() -> None:
    """Not vacuous: every layer is found, with the imports it is known to have."""
    found = {layer(module) for module in GRAPH}
    assert {"dialects", "server", "net", "routes", "upstream", "state", "auth",
            "testing"} <= found
    assert found >= LEAVES
    assert "chatmock.dialects.sse" in GRAPH["chatmock.dialects.events"]
    assert "trio" in GRAPH["chatmock.routes.relay"]
    assert offences("routes", "trio")  # the check finds what is there


def test_dialects_do_no_io_and_know_no_layer_around_them() -> None:
    assert offences("dialects", *IO_MODULES,
                    *chatmock("server", "net", "routes", "upstream", "state")) == []


def test_dialects_read_their_options_not_the_settings() -> None:
    """Only `dialects/options.py` knows `Settings` (to build `Options` from it)."""
    assert sorted(module for module, names in GRAPH.items()
                  if layer(module) == "dialects" and "chatmock.config.Settings" in names) == [
        "chatmock.dialects.options"]


def test_state_and_upstream_do_not_reach_up_into_routes() -> None:
    assert offences(frozenset({"state", "upstream"}), *chatmock("routes", "server")) == []


# What each lower layer may import besides the leaves (README, "How it is built").
BELOW = {"net": set(), "dialects": set(), "state": {"net"}, "auth": {"net", "server"},
         "upstream": {"net", "auth", "state", "dialects"}, "server": {"net", "state", "app"}}


@pytest.mark.parametrize("lower", sorted(BELOW))
def test_each_lower_layer_imports_only_what_lies_below_it(lower: str) -> None:
    others = {layer(module) for module in GRAPH} - LEAVES - BELOW[lower] - {"", lower}
    assert offences(lower, *chatmock(*others)) == []


def test_the_server_knows_no_dialect() -> None:
    assert offences("server", *chatmock("dialects")) == []


def test_nothing_in_the_product_imports_the_fakes() -> None:
    product = frozenset(layer(module) for module in GRAPH) - {"testing"}
    assert offences(product, *chatmock("testing")) == []


@pytest.mark.parametrize("leaf", sorted(LEAVES))
def test_shared_leaves_import_only_each_other(leaf: str) -> None:
    others = {layer(module) for module in GRAPH} - LEAVES - {""}  # "": chatmock/__init__
    assert offences(leaf, *chatmock(*others)) == []
