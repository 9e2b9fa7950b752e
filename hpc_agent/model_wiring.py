"""The source model an estimator needs, attached when the script never attaches it.

A Gammapy estimator (`LightCurveEstimator(source="source")`, `FluxPointsEstimator`, ...) fits the model named
by its `source=` on the datasets it runs on. A small model writes the reduction and the estimator, and drops
the step between them: the request's `SkyModel named "source"` is never made or never put on the datasets,
and the run fails deep inside Gammapy (`'source' is not in list`). When the request writes that model out
(`request_facts.request_source_model`), the step has one reading: the repair adds it right before the
estimator runs, reusing the script's own spectral model when it made exactly one of the request's kind.
"""

from __future__ import annotations

import ast
import re

from hpc_agent.bindings import bindings
from hpc_agent.request_facts import SourceModel, makes_named


def _estimator_calls(tree: ast.Module, name: str) -> dict[str, ast.Call]:
    """Variables bound to an estimator whose `source=` is `name` (or unset: the first model)."""
    found: dict[str, ast.Call] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Call) and _is_estimator(node.value, name):
            found[node.targets[0].id] = node.value
    return found


def _is_estimator(node: ast.expr, name: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    callee = node.func.attr if isinstance(node.func, ast.Attribute) else ast.unparse(node.func)
    if not callee.endswith("Estimator"):
        return False
    source = next((kw.value for kw in node.keywords if kw.arg == "source"), None)
    return source is None or (isinstance(source, ast.Constant) and source.value == name)


def _run_target(stmt: ast.stmt, estimators: dict[str, ast.Call], name: str) -> str | None:
    """The datasets variable a top-level statement runs a matching estimator on (`est.run(datasets)`)."""
    for node in ast.walk(stmt):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run" \
                and node.args and isinstance(node.args[0], ast.Name):
            owner = node.func.value
            if (isinstance(owner, ast.Name) and owner.id in estimators) or _is_estimator(owner, name):
                return node.args[0].id
    return None


def _sets_models(tree: ast.Module, target: str) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "models" and isinstance(n.value, ast.Name)
               and n.value.id == target and isinstance(n.ctx, ast.Store) for n in ast.walk(tree))


def _assigned(tree: ast.Module) -> dict[str, ast.expr]:
    return {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name)}


def attach_source_model(script: str, model: SourceModel | None) -> tuple[str, tuple[str, ...]]:
    """The script with the request's source model put on the datasets before the first top-level statement
    that runs an estimator of that source on them; unchanged when it makes or attaches the model itself."""
    if model is None:
        return script, ()
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script, ()
    if makes_named(tree, "SkyModel", model.name):
        return script, ()
    estimators = _estimator_calls(tree, model.name)
    stmt, target = next(((s, t) for s in tree.body if (t := _run_target(s, estimators, model.name))), (None, None))
    if stmt is None or target is None or _sets_models(tree, target):
        return script, ()
    assigned = _assigned(tree)
    kind = model.spectral.split("(", 1)[0]
    own = [v for v, value in assigned.items() if isinstance(value, ast.Call) and ast.unparse(value.func) == kind]
    lines = []
    if len(own) == 1:
        var = own[0]
    else:
        var = next(v for v in ("spectral_model", "source_spectral_model", "_source_spectral_model")
                   if v not in assigned)
        lines.append(f"{var} = {model.spectral}")
    lines += [f"{var}.{p}.frozen = True" for p in model.frozen if f".{p}.frozen" not in script]
    value = assigned.get(target)
    if isinstance(value, ast.List) or (isinstance(value, ast.Call) and ast.unparse(value.func) == "list"):
        lines.append(f"{target} = Datasets({target})")  # a plain list has no `.models`
    lines.append(f'{target}.models = [SkyModel(spectral_model={var}, name="{model.name}")]')
    source = script.splitlines(keepends=True)
    at = stmt.lineno - 1
    added = "".join(line + "\n" for line in lines)
    note = (f"attached the source model your request describes before the estimator runs on `{target}` "
            f"(line {stmt.lineno}): " + "; ".join(f"`{line}`" for line in lines))
    return "".join(source[:at]) + added + "".join(source[at:]), (note,)


def freeze_as_requested(script: str, model: SourceModel | None) -> tuple[str, tuple[str, ...]]:
    """`PowerLawSpectralModel(index=2.6, ..., frozen=True)`: Gammapy models take no `frozen` keyword, and when
    the request says which of this model's parameters are frozen, the keyword has one reading: it is dropped
    and those parameters are frozen on the next lines (`model.index.frozen = True`)."""
    if model is None or not model.frozen:
        return script, ()
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script, ()
    kind = model.spectral.split("(", 1)[0]
    rows = script.splitlines(keepends=True)
    notes = []
    for stmt in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Assign)), key=lambda n: n.lineno, reverse=True):
        call, target = stmt.value, stmt.targets[0]
        if not (len(stmt.targets) == 1 and isinstance(target, ast.Name) and isinstance(call, ast.Call)
                and ast.unparse(call.func).split(".")[-1] == kind and any(k.arg == "frozen" for k in call.keywords)):
            continue
        call.keywords = [k for k in call.keywords if k.arg != "frozen"]
        indent = " " * stmt.col_offset
        lines = [f"{indent}{target.id} = {ast.unparse(call)}"]
        lines += [f"{indent}{target.id}.{p}.frozen = True" for p in model.frozen]
        rows[stmt.lineno - 1:stmt.end_lineno or stmt.lineno] = [line + "\n" for line in lines]
        notes.append(f"line {stmt.lineno}: `{kind}` takes no `frozen` keyword; froze what your request says is frozen "
                     "after making it: " + "; ".join(f"`{line.strip()}`" for line in lines[1:]))
    if notes:
        return "".join(rows), tuple(reversed(notes))
    return _freeze_the_one_model(script, tree, kind, model.frozen)


def _freeze_the_one_model(script: str, tree: ast.Module, kind: str, frozen: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The script makes the request's spectral model once (`spectral_model = PowerLawSpectralModel(...)`) and
    freezes none of what the request says is frozen, anywhere: those parameters are frozen after it (a fit or
    light curve would otherwise fit them too, and give other numbers)."""
    made = [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name) and isinstance(n.value, ast.Call)
            and ast.unparse(n.value.func).split(".")[-1] == kind]
    if len(made) != 1 or re.search(r"\bfrozen\b|\bfreeze\w*\(", script):
        return script, ()
    stmt, name = made[0], made[0].targets[0].id  # type: ignore[attr-defined]
    indent = " " * stmt.col_offset
    lines = [f"{indent}{name}.{p}.frozen = True" for p in frozen]
    rows = script.splitlines(keepends=True)
    end = stmt.end_lineno or stmt.lineno
    rows[end - 1] = rows[end - 1].rstrip("\r\n") + "\n"
    rows[end:end] = [line + "\n" for line in lines]
    return "".join(rows), (f"line {stmt.lineno}: froze what your request says is frozen, after `{name}` is made: "
                           + "; ".join(f"`{line.strip()}`" for line in lines),)


def _fit_runs(tree: ast.Module) -> list[tuple[ast.stmt, ast.Call]]:
    """(top-level statement, call) of each `Fit(...).run(datasets)` or `fit.run(...)` of a name bound once to
    `Fit(...)`."""
    fits = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
            and ast.unparse(n.value.func).split(".")[-1] == "Fit" for t in n.targets if isinstance(t, ast.Name)}
    found = []
    for stmt in tree.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "run":
                owner = node.func.value
                if (isinstance(owner, ast.Name) and owner.id in fits) or \
                        (isinstance(owner, ast.Call) and ast.unparse(owner.func).split(".")[-1] == "Fit"):
                    found.append((stmt, node))
    return found


def _fitted_name(call: ast.Call) -> str | None:
    """The datasets variable a fit runs on: `run(datasets)`, `run(datasets=datasets)` or `run([dataset])`."""
    arg = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "datasets"), None)
    if isinstance(arg, ast.List) and len(arg.elts) == 1:
        arg = arg.elts[0]
    return arg.id if isinstance(arg, ast.Name) else None


def _attaches_models(tree: ast.Module) -> bool:
    """Whether the script puts models on anything: `x.models = ...`, `models=` to a call, `x.models.append(...)`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "models" and isinstance(node.ctx, ast.Store):
            return True
        if isinstance(node, ast.keyword) and node.arg == "models":
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend") \
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "models":
            return True
    return False


def model_for_the_fit(script: str, request_calls: tuple[str, ...], model: SourceModel | None = None
                      ) -> tuple[str, tuple[str, ...]]:
    """A fit run on datasets that never get a model fails with `No free parameters for fitting`: when the
    script puts no model on anything, the model is put on the fitted datasets right before the fit. The model
    has one reading: the script's one `SkyModel`, else a `SkyModel` of its one spectral model of the request's
    kind, else of the one spectral model the request writes out. Not for map datasets, whose source model also
    needs a spatial part and a background model."""
    try:
        tree = ast.parse(script)
    except SyntaxError:
        return script, ()
    runs = _fit_runs(tree)
    if not runs or _attaches_models(tree) or re.search(r"\bMapDataset\b", script):
        return script, ()
    stmt, call = runs[0]
    target = _fitted_name(call)
    if target is None or not bindings(tree).get(target) or \
            any(v.lineno >= stmt.lineno for v in bindings(tree)[target]):  # made before the fit's statement
        return script, ()
    assigned = _assigned(tree)
    made = [v for v, value in assigned.items() if isinstance(value, ast.Call) and ast.unparse(value.func).endswith("SkyModel")]
    spectral = [c for c in request_calls if c.split("(", 1)[0].endswith("SpectralModel")]
    lines = []
    if len(made) == 1:
        sky = made[0]
    else:
        if made or len(spectral) != 1:
            return script, ()
        kind = spectral[0].split("(", 1)[0]
        own = [v for v, value in assigned.items() if isinstance(value, ast.Call) and ast.unparse(value.func) == kind]
        if len(own) == 1:
            var = own[0]
        else:
            var = next(v for v in ("spectral_model", "source_spectral_model", "_source_spectral_model")
                       if v not in assigned)
            lines.append(f"{var} = {spectral[0]}")
        named = f', name="{model.name}"' if model is not None else ""
        sky = f"SkyModel(spectral_model={var}{named})"
    value = assigned.get(target)
    if isinstance(value, ast.List) or (isinstance(value, ast.Call) and ast.unparse(value.func) == "list"):
        lines.append(f"{target} = Datasets({target})")  # a plain list has no `.models`
    lines.append(f"{target}.models = [{sky}]")
    rows = script.splitlines(keepends=True)
    at = stmt.lineno - 1
    note = (f"your fit (line {stmt.lineno}) ran on `{target}`, which never gets a model (Gammapy: `No free "
            "parameters for fitting`); put the model on it before the fit: " + "; ".join(f"`{line}`" for line in lines))
    return "".join(rows[:at]) + "".join(line + "\n" for line in lines) + "".join(rows[at:]), (note,)
