"""The corpus' unit (`Document`) and its API part, from the *installed* Gammapy by introspection.

API documents always match the Gammapy that runs the scripts: every public module, class, function and
method with its signature and docstring, under its shortest public dotted name
(`gammapy.data.DataStore`, not `gammapy.data.data_store.DataStore`). Tutorials and the user guide are
made in `_tutorials.py`.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Iterator

from hpc_agent.names import exported as _exported
from hpc_agent.names import public_names
from hpc_agent.names import walk_modules as _modules

MAX_DEFAULT_CHARS = 60  # a longer default value's repr is shown as `...` (AnalysisConfig's ran to 2,000 characters)
MAX_DOC_CHARS = 1500  # a docstring beyond this is cut: the summary and parameters come first in numpydoc

SCRIPT_KIND = "script"  # a tutorial's whole code, condensed: shown whole, found through its page's pieces


@dataclass(frozen=True)
class Document:
    """One piece of reference text before chunking: where it comes from, what it documents, the text."""

    source: str  # "gammapy-api", "gammapy-2.1-sdist:<path in the sdist>" or a path relative to a --source folder
    symbol: str  # a dotted Gammapy name, or "<file>#<n>" for the n-th piece of a tutorial or guide page
    kind: str  # module | class | function | method | property | tutorial | guide | script
    text: str


# --- the installed Gammapy's public API ----------------------------------------------------------------------


class _Elided:
    """A default value too long to show: the snippet's room goes to the parameters and the docstring (the
    0.5B copied a whole config repr, `<Angle 0.02 deg>` and all, into its script)."""

    def __repr__(self) -> str:
        return "..."


def _signature(obj: object) -> str:
    """The call signature without what changes from process to process in default values' reprs (memory
    addresses, `<function nansum at 0x7f..>`; import times, `<Time object: ... value=2026-...>`): the same
    Gammapy must give the same chunks."""
    if not callable(obj):  # what inspect.signature refuses with a TypeError
        return "(...)"
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    sig = str(signature.replace(parameters=[
        p.replace(default=_Elided()) if p.default is not p.empty and len(_stable(repr(p.default))) > MAX_DEFAULT_CHARS
        else p for p in signature.parameters.values()]))
    return _stable(sig)


def _stable(text: str) -> str:
    return re.sub(r"<([\w.]+) object[^<>]*>", r"<\1 object>", re.sub(r" at 0x[0-9a-fA-F]+>", ">", text))


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
        if name.startswith("_"):
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
            exported = ", ".join(_exported(module)[:60])
            docs.append(Document("gammapy-api", module.__name__, "module",
                                 f"module {module.__name__}\n{_doc(module)}\nPublic names: {exported}".rstrip()))
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
