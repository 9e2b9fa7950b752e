"""Worked examples for the corpus: sphinx-gallery tutorials, notebooks and user-guide pages, cleaned.

They come from the installed Gammapy's sdist (`examples/tutorials/`, `docs/user-guide/`,
`docs/getting-started/`) or from folders named with `--source`. A gallery script is cut at its cells and
each code cell is kept with the text cells before it; neighbouring cells are joined into pieces of up to
`max_chars`, so a piece is a chain of steps, and each piece's code is preceded by the imports it uses
from elsewhere in the script (a snippet should run without guessing where `MapAxis` comes from). Plotting
and display calls, IPython magics and notebook noise are stripped (the prompt contract). Release notes,
design proposals (PIGs) and the developer guide are left out: they describe other versions' APIs.
Benchmark reference solutions never enter the corpus: a source folder that holds them is refused.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from hpc_agent.errors import UsageError
from hpc_agent.rag import _rst
from hpc_agent.rag._corpus import SCRIPT_KIND, Document

TUTORIALS = "examples/tutorials/"
GUIDES = ("docs/user-guide/", "docs/getting-started/")
MAX_PIECE_CHARS = 1500  # a piece of a worked example: fits the prompt's example budget whole

# --- cleaning code to the prompt contract ------------------------------------------------------------------

_DISPLAY = re.compile(r"\bplt\.|\bplot_\w*\(|\bdisplay\(|\.(peek|plot\w*|show|imshow|savefig)\(|^\s*(ax|axes|fig)\w*(\[[^\]]*\])?\.\w+")
_MAGIC = re.compile(r"^\s*[%!]")
_NOISE = re.compile(r"^\s*(#\s*)?(%matplotlib|get_ipython\(\)|from IPython|import IPython|import matplotlib|"
                    r"from matplotlib|# sphinx_gallery_|check_tutorials_setup|from gammapy\.utils\.check "
                    r"import|from gammapy\.utils\.scripts import make_path)")


def clean_code(code: str) -> str:
    """Drop display/plotting calls (with their continuation lines), IPython magics and notebook noise."""
    out: list[str] = []
    depth = 0  # open brackets of a dropped statement: its continuation lines go too
    for line in code.splitlines():
        if depth > 0:
            depth += line.count("(") + line.count("[") - line.count(")") - line.count("]")
            continue
        if _MAGIC.match(line) or _NOISE.match(line) or _DISPLAY.search(line):
            depth = line.count("(") + line.count("[") - line.count(")") - line.count("]")
            continue
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- imports a piece needs from the rest of its script ---------------------------------------------------------


def _bindings(code: str) -> dict[str, str]:
    """Name -> the import statement that binds it, for the top-level imports in `code`."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    found[a.asname or a.name] = f"from {node.module} import {a.name}" + (
                        f" as {a.asname}" if a.asname else "")
        elif isinstance(node, ast.Import):
            for a in node.names:
                found[a.asname or a.name.split(".")[0]] = f"import {a.name}" + (f" as {a.asname}" if a.asname else "")
    return found


def _used(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set(re.findall(r"[A-Za-z_]\w*", code))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _import_lines(statements: list[str]) -> list[str]:
    """`from m import a` statements merged per module (`from m import a, b`), in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for s in statements:
        if s.startswith("from "):
            module, _, names = s[5:].partition(" import ")
            grouped.setdefault(f"from {module} import ", []).append(names)
        else:
            grouped.setdefault(s, [])
    return [head + ", ".join(names) if names else head for head, names in grouped.items()]


# --- units: a code cell with the text before it ------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    prose: str
    code: str
    section: str = ""  # the section title in force: a piece starting mid-section is headed by it

    def render(self, imports: Sequence[str] = ()) -> str:
        code = "\n".join([*imports, *([""] if imports and self.code else []), self.code]).strip()
        return "\n".join(p for p in (self.prose, f"```python\n{code}\n```" if code else "") if p)


def _render_rst(text: str, read: Callable[[str], str | None] = lambda _p: None, *, page: bool = True
                ) -> tuple[str, list[str]]:
    """(page title, one markdown-ish text per section) of reStructuredText: prose, then fenced code.

    On a page, the first title names the page and an empty section is dropped; in a gallery cell's text
    every title is kept (it heads the code that follows)."""
    sections = _rst.sections(text, read)
    title = next((s.title for s in sections if s.title), "") if page else ""
    rendered = []
    for s in sections:
        parts = [f"## {s.title}"] if s.title and s.title != title else []
        for b in s.blocks:
            if b.kind == "prose":
                parts.append(b.text)
                continue
            code = clean_code(b.text) if b.lang == "python" else b.text.strip()
            if code:
                parts.append(f"```{b.lang}\n{code}\n```")
        if len(parts) > (1 if page and parts and parts[0].startswith("## ") else 0):
            rendered.append("\n".join(parts))
    return title, rendered


_CELL = re.compile(r"^# %%.*$|^#{20,}.*$", re.MULTILINE)
_DOCSTRING = re.compile(r'^\s*[rRuU]?("""|\'\'\')(.*?)\1', re.DOTALL)


def gallery_units(text: str) -> tuple[str, list[Unit]]:
    """(title, units) of a sphinx-gallery script: the docstring, then code cells with their text cells."""
    units: list[Unit] = []
    title = ""
    head = _DOCSTRING.match(text)
    if head:
        title, intro = _render_rst(head.group(2))
        if intro:
            units.append(Unit("\n".join(intro), ""))
        text = text[head.end():]
    pending: list[str] = []
    section = ""
    for cell in _CELL.split(text):
        lines = cell.strip("\n").splitlines()
        n = 0
        while n < len(lines) and (lines[n].startswith("#") or not lines[n].strip()):
            n += 1
        text_lines = (line[2:] if line.startswith("# ") else line[1:] for line in lines[:n])
        prose = "\n".join(line for line in text_lines if not (_MAGIC.match(line) or _NOISE.match(line)))
        raw = "\n".join(lines[n:])
        code = clean_code(raw)
        if raw.strip() and not code:
            continue  # a cell that only plotted or displayed: its text is about what was removed
        if prose.strip():
            pending += _render_rst(prose, page=False)[1]
            section = next((line[3:] for p in reversed(pending) for line in reversed(p.splitlines())
                            if line.startswith("## ")), section)
        if code:
            units.append(Unit("\n".join(pending), code, section))
            pending = []
    if pending:
        units.append(Unit("\n".join(pending), "", section))
    return title, units


def notebook_units(path: Path) -> list[Unit]:
    try:
        nb = json.loads(path.read_text())
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable notebook ({exc.__class__.__name__}); fix or remove the file") from exc
    units: list[Unit] = []
    pending: list[str] = []
    for cell in cells:  # outputs, execution counts and metadata are notebook noise: only sources are read
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        if cell.get("cell_type") == "code":
            code = clean_code(text)
            if code:
                units.append(Unit("\n".join(pending), code))
                pending = []
        elif cell.get("cell_type") == "markdown" and text.strip():
            pending.append(text.strip())
    if pending:
        units.append(Unit("\n".join(pending), ""))
    return units


def _pieces(units: list[Unit], max_chars: int) -> Iterator[tuple[str, str]]:
    """(section, text): neighbouring units joined up to `max_chars`, each piece's code preceded by the
    imports it lacks."""
    imports: dict[str, str] = {}
    for u in units:
        imports.update({k: v for k, v in _bindings(u.code).items() if k not in imports})
    group: list[Unit] = []

    def text(members: list[Unit]) -> str:
        code = "\n".join(u.code for u in members)
        own = _bindings(code)
        needed = _import_lines([imports[n] for n in sorted(_used(code)) if n in imports and n not in own])
        first = next((i for i, u in enumerate(members) if u.code), None)
        return "\n\n".join(u.render(needed if i == first else []) for i, u in enumerate(members))

    for u in units:
        if group and len(text([*group, u])) > max_chars:
            yield group[0].section, text(group)
            group = []
        group.append(u)
    if group:
        yield group[0].section, text(group)


def _documents(units: list[Unit], head: str, source: str, symbol: str, kind: str, max_chars: int) -> list[Document]:
    """The pieces that show code (prose alone is what the API docstrings already say), each headed by its
    page and, when it starts mid-section, the section."""
    docs: list[Document] = []
    for section, text in _pieces(units, max_chars):
        if "```" not in text:
            continue
        where = f" > {section}" if section and not text.startswith(f"## {section}") else ""
        docs.append(Document(source, f"{symbol}#{len(docs)}", kind, f"{head}{where}\n{text}"))
    return docs


def gallery_documents(text: str, source: str, symbol: str, max_chars: int = MAX_PIECE_CHARS) -> list[Document]:
    title, units = gallery_units(text)
    head = f"Tutorial: {title or Path(symbol).stem.replace('_', ' ')}"
    return _documents(units, head, source, symbol, "tutorial", max_chars) + _script(units, head, source, symbol)


# --- a tutorial's whole code, condensed: what a small model adapts best --------------------------------------------

_SHOWN_ONLY = ("print", "display", "repr")  # calls that only show something
_FILE_CALLS = re.compile(r"\.(write|to_yaml|mkdir|unlink)\(|\bmake_path\(|\bPath\(")
_LOCAL_PATH = re.compile(r"^(Path|make_path)\(")
_FIGURE_NAMES = {"ax", "axes", "fig", "plt"}  # names of a removed figure ...
_FIGURE = re.compile(r"^plot\w*\s*=")  # ... and plot settings (`plot_kwargs = {...}`)


def _shows_only(stmt: ast.stmt) -> bool:
    """A notebook display (a bare name, attribute, subscript or literal) or a print: nothing is computed."""
    if not isinstance(stmt, ast.Expr):
        return False
    value = stmt.value
    if isinstance(value, ast.Call):
        return isinstance(value.func, ast.Name) and value.func.id in _SHOWN_ONLY
    return not isinstance(value, (ast.Await, ast.Yield, ast.YieldFrom))


def condensed_script(code_cells: Sequence[str]) -> str:
    """The code of a whole tutorial as one script: imports merged at the top, then every computing statement
    in order. Displays and prints go (nothing is computed), and so do the tutorial's round trips through
    local files (a `Path(...)` folder written then read back): a script here writes nothing it needs."""
    imports: list[str] = []
    body: list[str] = []
    local_paths: set[str] = set()
    for cell in code_cells:
        try:
            tree = ast.parse(cell)
        except SyntaxError:
            continue
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                imports += [line for line in _bindings(ast.unparse(stmt)).values() if line not in imports]
                continue
            text = ast.get_source_segment(cell, stmt) or ast.unparse(stmt)
            names = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name)}
            if _FILE_CALLS.search(text) or names & local_paths:
                if isinstance(stmt, ast.Assign):
                    value = ast.unparse(stmt.value)
                    # a path, not a read
                    if _LOCAL_PATH.match(value) or (value and not isinstance(stmt.value, ast.Call)):
                        local_paths.update(t.id for t in stmt.targets if isinstance(t, ast.Name))
                continue
            if not (_shows_only(stmt) or names & _FIGURE_NAMES or _FIGURE.search(text)):
                body.append(text)
    used = set().union(*(_used(b) for b in body)) if body else set()
    needed = [line for line in imports if any(n in used for n in _bindings(line))]
    return "\n".join(_import_lines(needed)) + "\n\n" + "\n".join(body)


def _script(units: list[Unit], head: str, source: str, symbol: str) -> list[Document]:
    code = [u.code for u in units if u.code]
    if not code:
        return []
    return [Document(source, f"{symbol}#{SCRIPT_KIND}", SCRIPT_KIND,
                     f"{head} (the whole script)\n```python\n{condensed_script(code)}\n```")]


def guide_documents(text: str, source: str, symbol: str, read: Callable[[str], str | None] = lambda _p: None,
                    max_chars: int = MAX_PIECE_CHARS) -> list[Document]:
    title, sections = _render_rst(text, read)
    units = [Unit(s, "") for s in sections]
    return _documents(units, f"Guide: {title or Path(symbol).stem}", source, symbol, "guide", max_chars)


# --- where they come from: the sdist, or folders -----------------------------------------------------------------


def sdist_documents(files: Mapping[str, str], label: str, max_chars: int = MAX_PIECE_CHARS) -> list[Document]:
    """The tutorials and user guide of an sdist (`files`: member text by path), sources `<label>:<path>`."""
    docs: list[Document] = []
    for rel, text in files.items():
        if rel.startswith(TUTORIALS) and rel.endswith(".py"):
            docs += gallery_documents(text, f"{label}:{rel}", rel.removeprefix("examples/"), max_chars)
        elif rel.startswith(GUIDES) and rel.endswith(".rst"):
            here = rel.rsplit("/", 1)[0]

            def read(path: str, here: str = here) -> str | None:  # `.. plot::` paths are relative to docs/
                return files.get(f"docs/{path.lstrip('/')}") or files.get(f"{here}/{path}")

            docs += guide_documents(text, f"{label}:{rel}", rel.removeprefix("docs/"), read, max_chars)
    return docs


def tutorial_documents(folder: Path, *, exclude: tuple[Path, ...] = (), max_chars: int = MAX_PIECE_CHARS
                       ) -> list[Document]:
    """Sphinx-gallery `.py` files, notebooks and `.rst` pages under `folder`, cleaned, in pieces."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise UsageError(f"--source {folder}: not a folder; point it at a folder of tutorial .py/.ipynb/.rst files")
    for ex in exclude:
        ex = ex.resolve()
        if folder == ex or ex.is_relative_to(folder) or folder.is_relative_to(ex):
            raise UsageError(f"--source {folder}: overlaps {ex} (benchmark reference solutions must stay out of "
                             "the corpus); pass a folder without them")
    docs: list[Document] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb", ".rst") and p.is_file()):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".rst":
            def read(name: str, here: Path = path.parent) -> str | None:
                target = (folder / name.lstrip("/")) if name.startswith("/") else here / name
                return target.read_text() if target.is_file() else None

            docs += guide_documents(path.read_text(), rel, rel, read, max_chars)
        elif path.suffix == ".ipynb":
            units, head = notebook_units(path), f"Tutorial: {path.stem.replace('_', ' ')}"
            docs += _documents(units, head, rel, rel, "tutorial", max_chars) + _script(units, head, rel, rel)
        else:
            docs += gallery_documents(path.read_text(), rel, rel, max_chars)
    return docs
