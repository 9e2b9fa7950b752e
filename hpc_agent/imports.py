"""Repairs of a script's imports: a name imported from the wrong module, an import of what exists nowhere and is
never used, and a name or submodule used without its import. The installed libraries decide (the name index),
never a guess: a name with two homes is left to the model.
"""

from __future__ import annotations

import ast

from hpc_agent.checks import undefined_names
from hpc_agent.names import NameIndex
from hpc_agent.names import import_quietly as _import_quiet
from hpc_agent.names import module_exists as _is_module
from hpc_agent.source_edits import Edit, add_imports, drop_statements, splice
from hpc_agent.units import units_class


SUBMODULE_PACKAGES = ("gammapy", "astropy", "scipy")  # `pkg.sub.X` used: `import pkg.sub` is added


def fix_import_homes(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """`from gammapy.makers import SpectrumDataset` -> `from gammapy.datasets import SpectrumDataset`: a name
    imported from a module that lacks it, and exported by exactly one other module."""
    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        if node.module.split(".")[0] not in ("gammapy", "astropy", "regions"):
            continue
        module = _import_quiet(node.module)
        moved: dict[str, list[ast.alias]] = {}
        kept: list[ast.alias] = []
        for alias in node.names:
            missing = alias.name != "*" and module is not None and not hasattr(module, alias.name) \
                and not _is_module(f"{node.module}.{alias.name}")
            home = index.home(alias.name) or (units_class(alias.name) if missing else None)
            unknown_module = module is None and home is not None
            if (missing or unknown_module) and home and home != node.module:
                moved.setdefault(home, []).append(alias)
            else:
                kept.append(alias)
        if not moved:
            continue
        indent = " " * node.col_offset
        lines = [f"from {node.module} import {_names(kept)}"] if kept else []
        lines += [f"from {home} import {_names(aliases)}" for home, aliases in moved.items()]
        edits.append((node, f"\n{indent}".join(lines)))
        for home, aliases in moved.items():
            for a in aliases:
                notes.append(f"`{a.name}` is not in `{node.module}`: imported it from `{home}` "
                             f"(`from {home} import {a.name}`)")
    return (splice(text, edits), notes) if edits else (text, [])


def fix_imported_names(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`import gammapy.data.DataStore` (a class, not a module) -> `from gammapy.data import DataStore`, and
    `import gammapy.data` too when the script spells the full path."""
    tree = ast.parse(text)
    edits, notes = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import):
            continue
        lines, changed = [], False
        for alias in node.names:
            parent, _dot, name = alias.name.rpartition(".")
            if (parent and alias.name.split(".")[0] in SUBMODULE_PACKAGES and not _is_module(alias.name)
                    and hasattr(_import_quiet(parent), name)):
                lines.append(f"from {parent} import {name}" + (f" as {alias.asname}" if alias.asname else ""))
                if alias.asname is None:
                    lines.append(f"import {parent}")  # `gammapy.data.DataStore(...)` keeps working
                notes.append(f"`{alias.name}` is not a module: replaced `import {alias.name}` by "
                             f"`from {parent} import {name}`")
                changed = True
            else:
                lines.append(f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else ""))
        if changed:
            edits.append((node, f"\n{' ' * node.col_offset}".join(lines)))
    return (splice(text, edits), notes) if edits else (text, [])


def drop_unused_missing_imports(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """`from gammapy.makers import EventListMaker` (exists nowhere) never used afterwards: the import goes.
    Used names are left to grounding, which names the closest real ones."""
    tree = ast.parse(text)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    edits: list[Edit] = []
    notes, dropped = [], []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                and node.module.split(".")[0] in ("gammapy", "astropy", "regions")):
            continue
        module = _import_quiet(node.module)
        if module is None:
            continue
        gone = [a for a in node.names if a.name != "*" and (a.asname or a.name) not in used
                and not hasattr(module, a.name) and not _is_module(f"{node.module}.{a.name}")
                and index.home(a.name) is None]
        if not gone:
            continue
        kept = [a for a in node.names if a not in gone]
        if kept:
            edits.append((node, f"from {node.module} import {_names(kept)}"))
        else:
            dropped.append(node)
        notes += [f"removed `from {node.module} import {a.name}`: no such name in the installed packages, and "
                  "the script never uses it" for a in gone]
    edits += drop_statements(tree, dropped)
    return (splice(text, edits), notes) if edits else (text, [])


def _names(aliases: list[ast.alias]) -> str:
    return ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in aliases)


def add_missing_imports(text: str, index: NameIndex) -> tuple[str, list[str]]:
    """An undefined name with exactly one import that defines it (`json`, `np`, `SkyCoord`, `DataStore`)."""
    tree = ast.parse(text)
    lines: list[str] = []
    for name in undefined_names(tree):
        line = index.import_for(name)
        if line and line not in lines:
            lines.append(line)
    if not lines:
        return text, []
    lines.sort(key=lambda s: (not s.startswith("import "), s))
    return add_imports(text, lines), [f"added `{line}`" for line in lines]


def add_submodule_imports(text: str, _: NameIndex) -> tuple[str, list[str]]:
    """`gammapy.data.DataStore` used after `import gammapy` alone: `import gammapy.data` is added."""
    tree = ast.parse(text)
    imported: set[str] = set()
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                imported.update(".".join(a.name.split(".")[:i]) for i in range(1, a.name.count(".") + 2))
                if a.asname is None:
                    roots.add(a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.update(".".join(node.module.split(".")[:i]) for i in range(1, node.module.count(".") + 2))
    needed: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        dotted = _dotted(node)
        if dotted is None or dotted.split(".")[0] not in roots or dotted.split(".")[0] not in SUBMODULE_PACKAGES:
            continue
        parts = dotted.split(".")
        for i in range(2, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix not in imported and prefix not in needed and _is_module(prefix):
                needed.append(prefix)
    needed = [m for m in needed if not any(o.startswith(m + ".") for o in needed)]
    if not needed:
        return text, []
    lines = [f"import {m}" for m in needed]
    return add_imports(text, lines), [f"added `{line}` (the script uses `{m}.…` without importing it)"
                                      for line, m in zip(lines, needed)]


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])
