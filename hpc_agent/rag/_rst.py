"""reStructuredText of the user guide as sections of prose and code, for the corpus.

Only what a script writer reads survives: section titles, prose (roles and links reduced to their text),
admonition and dropdown bodies, and code from `code-block` / `testcode` / `plot` directives, `::` literal
blocks and `>>>` doctests; a `plot` or `literalinclude` naming a file brings that file's code (resolved
through `read`). Figures, math, tables of contents, galleries, labels and test output are dropped.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Callable

_CODE = frozenset({"code-block", "code", "sourcecode", "testcode", "plot", "literalinclude", "ipython",
                   "substitution-code-block", "doctest"})
_PROSE = frozenset({"note", "warning", "tip", "hint", "important", "attention", "caution", "seealso", "admonition",
                    "dropdown", "topic", "glossary", "versionadded", "versionchanged", "deprecated", "rubric",
                    "grid-item-card", "grid", "tab-item", "tab-set", "list-table", "container"})
_DIRECTIVE = re.compile(r"^(\s*)\.\.\s+([\w:-]+)::\s*(.*)$")
_EXPLICIT = re.compile(r"^(\s*)\.\.(\s|$)")  # comments, targets (`.. _label:`), substitutions
_UNDERLINE = re.compile(r"^([=\-~^*#\"'+`:._])\1{2,}\s*$")
_OPTION = re.compile(r"^\s*:[\w-]+:")
_ITEM = re.compile(r"^\s*([*+-]|#\.|\d+\.)\s")


@dataclass
class Block:
    kind: str  # prose | code
    text: str
    lang: str = "python"


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def inline(text: str) -> str:
    """Roles and links reduced to what they name: `:class:`~gammapy.maps.Map`` -> `gammapy.maps.Map`."""
    text = re.sub(r":[\w:-]+:`([^`<]*?)\s*<([^`>]*)>`", r"\1", text)  # :ref:`text <label>` -> text
    text = re.sub(r":[\w:-]+:`~?([^`]*)`", r"`\1`", text)  # :func:`~a.b` -> `a.b`
    text = re.sub(r"`([^`<]+?)\s*<[^`>]*>`__?", r"\1", text)  # `text <url>`_ -> text
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = re.sub(r"(?<![`\w])`~([^`]+)`", r"`\1`", text)  # `~gammapy.data.EventList` -> `gammapy.data.EventList`
    return re.sub(r"\|(\w+)\|", r"\1", text)


def _body(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The indented lines after `start` (blank lines included), dedented; and the index after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return textwrap.dedent("\n".join(lines[start:end])).splitlines(), end


def _strip_options(body: list[str]) -> list[str]:
    i = 0
    while i < len(body) and _OPTION.match(body[i]):
        i += 1
    return body[i:]


def _lang(name: str, arg: str) -> str:
    if name in ("testcode", "plot", "doctest", "ipython"):
        return "python"
    words = arg.split()
    return words[0].lower() if words and name != "literalinclude" else "python"


def _doctest(lines: list[str]) -> str:
    """`>>>` / `...` lines as plain code; the expected output lines are dropped."""
    return "\n".join(line.lstrip()[4:] for line in lines if line.lstrip().startswith((">>>", "...")))


def blocks(lines: list[str], read: Callable[[str], str | None]) -> list[Block]:
    """The prose and code of a run of rst lines (no section titles in it)."""
    out: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        text = ""
        for s in para:  # lines joined into sentences; a list item starts a new line
            text += ("\n" if _ITEM.match(s) and text else " " if text else "") + s.strip()
        if text.strip():
            out.append(Block("prose", inline(text).strip()))
        para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        directive = _DIRECTIVE.match(line)
        if not line.strip():
            flush()
            i += 1
        elif directive:
            flush()
            name, arg = directive.group(2), directive.group(3).strip()
            body, i = _body(lines, i + 1, indent)
            body = _strip_options(body)
            if name in _CODE:
                included = read(arg) if name in ("plot", "literalinclude") and arg else None
                code = included if included is not None else "\n".join(body).strip("\n")
                if name == "doctest" or code.lstrip().startswith(">>>"):
                    code = _doctest(code.splitlines())
                if code.strip():
                    out.append(Block("code", code, _lang(name, arg)))
            elif name in _PROSE:
                if arg:
                    out.append(Block("prose", inline(arg)))
                out += blocks(body, read)
        elif _EXPLICIT.match(line):  # a comment, target or substitution definition, with its body
            flush()
            _, i = _body(lines, i + 1, indent)
        elif line.lstrip().startswith(">>>"):
            flush()
            start = i
            while i < len(lines) and lines[i].strip():
                i += 1
            out.append(Block("code", _doctest(lines[start:i])))
        else:
            para.append(line)
            i += 1
            if line.rstrip().endswith("::") and (i >= len(lines) or not lines[i].strip()):
                para[-1] = line.rstrip()[:-1]  # "Example::" -> "Example:"; the literal block follows
                flush()
                body, i = _body(lines, i, indent)
                if any(s.strip() for s in body):
                    out.append(Block("code", "\n".join(body).strip("\n")))
    flush()
    return out


def _is_title(lines: list[str], i: int) -> bool:
    title = lines[i]
    return (i + 1 < len(lines) and bool(title.strip()) and not title[0].isspace() and not _EXPLICIT.match(title)
            and bool(_UNDERLINE.match(lines[i + 1])) and len(lines[i + 1].rstrip()) >= len(title.rstrip()))


def sections(text: str, read: Callable[[str], str | None] = lambda _p: None) -> list[Section]:
    """The document cut at its section titles (over- and underlined or underlined); the first is the page."""
    lines = text.splitlines()
    cuts: list[tuple[int, int, str]] = []  # (first line of the title markup, first line after it, title)
    for i in range(len(lines)):
        if _is_title(lines, i):
            over = i > 0 and bool(_UNDERLINE.match(lines[i - 1])) and lines[i - 1][0] == lines[i + 1][0]
            cuts.append((i - 1 if over else i, i + 2, inline(lines[i].strip())))
    found = []
    bounds = [(0, 0, "")] + cuts
    for n, (_, begin, title) in enumerate(bounds):
        end = bounds[n + 1][0] if n + 1 < len(bounds) else len(lines)
        content = blocks(lines[begin:end], read)
        if title or content:
            found.append(Section(title, content))
    return found
