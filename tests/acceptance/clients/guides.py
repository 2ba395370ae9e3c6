"""The README's client guides, read as data: the code blocks under `## Guides`.

The client tests run these snippets (with the test server's port in place of
8000), and tests/unit/test_guides_match.py checks them without any client
installed, so a guide cannot drift from what the tests prove.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[3] / "README.md"
GUIDE_ADDRESS = "127.0.0.1:8000"
"""Where every guide points; tests replace it with the test server's address."""
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Block:
    lang: str
    text: str

    def at(self, address: str) -> str:
        """The snippet pointed at `address` (host:port) instead of the default."""
        return self.text.replace(GUIDE_ADDRESS, address)


def guide_sections(readme: str | None = None) -> dict[str, str]:
    """`### title` -> its text, for the subsections of `## Guides`."""
    text = README.read_text() if readme is None else readme
    start = text.index("\n## Guides\n")
    end = text.index("\n## ", start + 1)
    parts = re.split(r"^### (.+)\n", text[start:end], flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def blocks(title: str, lang: str) -> list[Block]:
    """The `lang` code blocks of the guide `title`, in order."""
    section = guide_sections()[title]
    return [Block(found, body) for found, body in _FENCE.findall(section) if found == lang]


def block(title: str, lang: str, index: int = 0) -> Block:
    found = blocks(title, lang)
    assert len(found) > index, f"README guide {title!r} has no {lang} block #{index}"
    return found[index]


def exported(snippet: str) -> dict[str, str]:
    """`export NAME=VALUE` lines of a shell snippet."""
    return dict(re.findall(r"^export (\w+)=(\S+)$", snippet, re.MULTILINE))
