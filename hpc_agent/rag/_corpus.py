"""The corpus: documents from the *installed* Gammapy's public API and from tutorial sources.

API documents are made by introspection, so they always match the Gammapy that runs the scripts: every
public module, class, function and method with its signature and docstring, under its shortest public
dotted name (`gammapy.data.DataStore`, not `gammapy.data.data_store.DataStore`).

Tutorial documents come from a folder of sphinx-gallery `.py` files and notebooks (`.ipynb`), cleaned to
respect the prompt contract: plotting and display calls, IPython magics and notebook noise are stripped.
Benchmark reference solutions never enter the corpus (no answer leakage): a source folder that holds them
is refused.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Iterator

from hpc_agent.errors import UsageError

MAX_DOC_CHARS = 1500  # a docstring beyond this is cut: the summary and parameters come first in numpydoc


@dataclass(frozen=True)
class Document:
    """One piece of reference text before chunking: where it comes from, what it documents, the text."""

    source: str  # "gammapy-api" or the tutorial file's path relative to its source folder
    symbol: str  # a dotted Gammapy name, or "<file>#<section>" for tutorials
    kind: str  # module | class | function | method | property | tutorial
    text: str


# --- the installed Gammapy's public API ----------------------------------------------------------------------


def _public(name: str) -> bool:
    return not name.startswith("_")


def _modules(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        parts = info.name.split(".")
        if any(p.startswith("_") or p in ("tests", "conftest", "scripts") for p in parts[1:]):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield importlib.import_module(info.name)
        except Exception:  # an optional dependency missing: that module is not usable here either
            continue


def _exported(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, obj in vars(module).items()
                 if _public(n) and getattr(obj, "__module__", "") == module.__name__]
    return [n for n in names if _public(n)]


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def _doc(obj: object, limit: int = MAX_DOC_CHARS) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc if len(doc) <= limit else doc[:limit].rsplit("\n", 1)[0] + "\n..."


def _member_list(members: list[Document], limit: int = 900) -> str:
    """`Members:` with each method's or property's one-line summary: the class's chunk doubles as an overview."""
    lines = []
    for m in members:
        head, _, rest = m.text.partition("\n")
        name = m.symbol.rsplit(".", 1)[-1]
        summary = rest.strip().split("\n\n", 1)[0].replace("\n", " ")[:90]
        lines.append(f"- {name}{'' if m.kind == 'property' else '()'}: {summary}")
    text = "\n".join(lines)
    if len(text) > limit:
        text = text[:limit].rsplit("\n", 1)[0] + "\n- ..."
    return f"\nMembers:\n{text}" if lines else ""


def public_names(package: str = "gammapy") -> dict[int, tuple[str, object]]:
    """id(object) -> (shortest public dotted name, object) over every public module of `package`."""
    found: dict[int, tuple[str, object]] = {}
    for module in _modules(package):
        for name in _exported(module):
            obj = getattr(module, name, None)
            if obj is None or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if not getattr(obj, "__module__", "").startswith(package):
                continue  # re-exported astropy/numpy names are not Gammapy's to document
            dotted = f"{module.__name__}.{name}"
            best = found.get(id(obj))
            if best is None or (dotted.count("."), len(dotted)) < (best[0].count("."), len(best[0])):
                found[id(obj)] = (dotted, obj)
    return found


def _own_members(cls: type, documented: set[int]) -> dict[str, object]:
    """The class's own attributes plus those inherited from bases that are documented nowhere else
    (private or unexported Gammapy bases: `CountsStatistic.sqrt_ts` shows up under `WStatCountsStatistic`)."""
    members: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if base is cls or (getattr(base, "__module__", "").startswith("gammapy") and id(base) not in documented):
            members.update(vars(base))
    return members


def _members(cls: type, dotted: str, documented: set[int]) -> Iterator[Document]:
    for name, raw in sorted(_own_members(cls, documented).items()):
        if not _public(name):
            continue
        if isinstance(raw, property):
            doc = _doc(raw)
            if doc:
                yield Document("gammapy-api", f"{dotted}.{name}", "property", f"{dotted}.{name} (property)\n{doc}")
            continue
        func = raw.__func__ if isinstance(raw, (classmethod, staticmethod)) else raw
        if not inspect.isfunction(func):
            continue
        prefix = "classmethod " if isinstance(raw, classmethod) else ""
        sig = _signature(func)
        if not isinstance(raw, staticmethod):
            sig = re.sub(r"^\((self|cls)(, )?", "(", sig)
        yield Document("gammapy-api", f"{dotted}.{name}", "method",
                       f"{prefix}{dotted}.{name}{sig}\n{_doc(func)}".rstrip())


def api_documents(package: str = "gammapy") -> list[Document]:
    """Every public module, class (with its own public methods and properties) and function, sorted."""
    docs: list[Document] = []
    for module in _modules(package):
        if module.__name__.count(".") <= 1 and module.__doc__:  # the public subpackages' overviews
            names = ", ".join(_exported(module)[:60])
            docs.append(Document("gammapy-api", module.__name__, "module",
                                 f"module {module.__name__}\n{_doc(module)}\nPublic names: {names}".rstrip()))
    names = public_names(package)
    for dotted, obj in sorted(names.values(), key=lambda x: x[0]):
        if inspect.isclass(obj):
            init = _signature(obj)
            bases = ", ".join(b.__name__ for b in obj.__bases__ if b is not object)
            members = list(_members(obj, dotted, set(names)))
            docs.append(Document("gammapy-api", dotted, "class",
                                 f"class {dotted}{init}" + (f"  (bases: {bases})" if bases else "")
                                 + f"\n{_doc(obj, 900)}{_member_list(members)}"))
            docs.extend(members)
        else:
            docs.append(Document("gammapy-api", dotted, "function", f"{dotted}{_signature(obj)}\n{_doc(obj)}".rstrip()))
    return sorted(docs, key=lambda d: (d.symbol, d.kind))


# --- tutorial sources -----------------------------------------------------------------------------------------

_DISPLAY = re.compile(r"\bplt\.|\bdisplay\(|\.(peek|plot\w*|show|imshow|savefig)\(|^\s*(ax|axes|fig)\w*(\[[^\]]*\])?\.\w+")
_MAGIC = re.compile(r"^\s*[%!]")
_NOISE = re.compile(r"^\s*(%matplotlib|get_ipython\(\)|from IPython|import IPython|import matplotlib|"
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


_GALLERY_SPLIT = re.compile(r"^# %%.*$|^#{20,}.*$", re.MULTILINE)
_DOCSTRING = re.compile(r'^\s*("""|\'\'\')(.*?)\1', re.DOTALL)


def _gallery_sections(text: str) -> list[str]:
    """A sphinx-gallery script as text sections: the leading docstring, then each `# %%` cell."""
    sections = []
    head = _DOCSTRING.match(text)
    if head:
        sections.append(head.group(2).strip())
        text = text[head.end():]
    for cell in _GALLERY_SPLIT.split(text):
        prose = "\n".join(line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else ""
                          for line in cell.splitlines() if line.startswith("#")).strip()
        code = clean_code("\n".join(line for line in cell.splitlines() if not line.startswith("#")))
        block = "\n".join(p for p in (prose, f"```python\n{code}\n```" if code else "") if p)
        if block:
            sections.append(block)
    return sections


def _notebook_sections(path: Path) -> list[str]:
    try:
        nb = json.loads(path.read_text())
        cells = nb["cells"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable notebook ({exc.__class__.__name__}); fix or remove the file") from exc
    sections = []
    for cell in cells:  # outputs, execution counts and metadata are notebook noise: only sources are read
        src = cell.get("source", "")
        text = "".join(src) if isinstance(src, list) else str(src)
        if cell.get("cell_type") == "code":
            code = clean_code(text)
            if code:
                sections.append(f"```python\n{code}\n```")
        elif cell.get("cell_type") == "markdown" and text.strip():
            sections.append(text.strip())
    return sections


def _merge(sections: list[str], max_chars: int) -> list[str]:
    """Neighbouring sections joined up to `max_chars` (prose stays with the code it explains)."""
    merged: list[str] = []
    for s in sections:
        if merged and len(merged[-1]) + len(s) + 2 <= max_chars:
            merged[-1] += "\n\n" + s
        else:
            merged.append(s)
    return merged


def tutorial_documents(folder: Path, *, exclude: tuple[Path, ...] = (), max_chars: int = 1500) -> list[Document]:
    """Sphinx-gallery `.py` files and notebooks under `folder`, cleaned, one document per merged section."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise UsageError(f"--source {folder}: not a folder; point it at a folder of tutorial .py/.ipynb files")
    for ex in exclude:
        ex = ex.resolve()
        if folder == ex or ex.is_relative_to(folder) or folder.is_relative_to(ex):
            raise UsageError(f"--source {folder}: overlaps {ex} (benchmark reference solutions must stay out of "
                             "the corpus); pass a folder without them")
    docs: list[Document] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".py", ".ipynb") and p.is_file()):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(folder).as_posix()
        sections = _notebook_sections(path) if path.suffix == ".ipynb" else _gallery_sections(path.read_text())
        title = path.stem.replace("_", " ")
        for i, text in enumerate(_merge(sections, max_chars)):
            docs.append(Document(rel, f"{rel}#{i}", "tutorial", f"Tutorial: {title}\n{text}"))
    return docs
