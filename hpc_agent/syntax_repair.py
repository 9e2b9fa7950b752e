"""Repairs of scripts that do not parse or do not compile, where the fix has one reading.

Small models leave a multi-line call unclosed, or write a quantity the way documentation prints it
(`[1, 100] TeV`, `1e-12 cm-2 s-1 TeV-1`). Every other repair needs an AST, so these run first. Each edit is
kept only when it moves the parser's first error past the line it fixed: a guess that does not help is undone.
A script that parses can still fail to compile: a keyword given twice the same value is given once.
"""

from __future__ import annotations

import ast
import io
import keyword
import re
import tokenize

from hpc_agent.source_edits import splice

CLOSERS = {"(": ")", "[": "]", "{": "}"}
_NEVER_CLOSED = re.compile(r"^'([(\[{])' was never closed")
MAX_EDITS = 8  # each edit fixes one line; a script needing more is the model's to rewrite


def _error(text: str) -> SyntaxError | None:
    try:
        ast.parse(text)
    except SyntaxError as e:
        return e
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


Edit = tuple[str, str, tuple[int, int]]  # the new text, what was done, where the edit ends (line, column)


def close_bracket(text: str, err: SyntaxError) -> Edit | None:
    """`'(' was never closed` at line L: the bracket is closed, on a line of its own at L's indent, after the
    last line of the indented continuation that follows L (the call's arguments)."""
    m = _NEVER_CLOSED.match(err.msg or "")
    if not m or not err.lineno:
        return None
    rows = text.splitlines()
    at = err.lineno - 1
    base = _indent(rows[at])
    last = at
    for i in range(at + 1, len(rows)):
        row = rows[i]
        if not row.strip() or row.lstrip().startswith("#"):
            continue
        if _indent(row) <= base:
            break
        last = i
    closer = CLOSERS[m.group(1)]
    rows.insert(last + 1, " " * base + closer)
    note = f"closed `{rows[at].strip()}` with a `{closer}` line: it was never closed"
    return "\n".join(rows) + "\n", note, (last + 2, base + 1)


def _is_unit(text: str) -> bool:
    import astropy.units as u

    try:
        unit = u.Unit(text, parse_strict="raise")
    except (ValueError, TypeError):
        return False
    return not isinstance(unit, u.UnrecognizedUnit) and unit != u.dimensionless_unscaled


def bare_units(text: str, err: SyntaxError) -> Edit | None:
    """`[1, 100] TeV` or `1e-12 cm-2 s-1 TeV-1` on the failing line: the unit words become
    `* u.Unit("...")` (astropy's own parser must read them as one unit)."""
    if not err.lineno:
        return None
    rows = text.splitlines(keepends=True)
    line = rows[err.lineno - 1]
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(line).readline)
                if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.COMMENT)]
    except (tokenize.TokenError, IndentationError):
        return None
    for i in range(len(toks) - 1):
        left, word = toks[i], toks[i + 1]
        if not (left.type == tokenize.NUMBER or left.string in ("]", ")")):
            continue
        if word.type != tokenize.NAME or keyword.iskeyword(word.string):
            continue
        j = i + 1  # the unit's tokens: names, each optionally raised by `-N`/`N`, joined by spaces, `/` or `.`
        while j + 1 < len(toks) and (
                toks[j + 1].type == tokenize.NAME and not keyword.iskeyword(toks[j + 1].string)
                or toks[j + 1].type == tokenize.NUMBER and (toks[j].type == tokenize.NAME or toks[j].string == "-")
                or toks[j + 1].string == "-" and j + 2 < len(toks) and toks[j + 2].type == tokenize.NUMBER
                or toks[j + 1].string in ("/", "**") and j + 2 < len(toks)):
            j += 1
        while toks[j].type != tokenize.NAME and toks[j].type != tokenize.NUMBER:
            j -= 1
        start, end = word.start[1], toks[j].end[1]
        spelled = line[start:end]
        if not _is_unit(spelled):
            continue
        written = f' * u.Unit("{spelled}")'
        rows[err.lineno - 1] = line[:left.end[1]] + written + line[end:]
        note = f"wrote the bare unit `{spelled}` as `*{written[2:]}` (a Quantity is a number times a unit)"
        return "".join(rows), note, (err.lineno, left.end[1] + len(written))
    return None


_FROM_AS = re.compile(r"^(\s*)from\s+([\w.]+)\s+as\s+(\w+)\s*$")


def from_as_import(text: str, err: SyntaxError) -> Edit | None:
    """`from astropy.units as u` (the 0.5B, twice): a module imported under a name, `import astropy.units as u`."""
    if not err.lineno:
        return None
    rows = text.splitlines(keepends=True)
    m = _FROM_AS.match(rows[err.lineno - 1].rstrip("\n"))
    if m is None:
        return None
    new = f"{m.group(1)}import {m.group(2)} as {m.group(3)}"
    old = rows[err.lineno - 1].strip()
    rows[err.lineno - 1] = new + "\n"
    return "".join(rows), f"line {err.lineno}: `{old}` is written `{new.strip()}` (a module under a name)", \
        (err.lineno, len(new))


def _result_dict(line: str) -> str | None:
    """The longest dict literal with string keys written in `line` (`{"n_obs": n, "livetime_h": t}`)."""
    best: str | None = None
    for i in (i for i, c in enumerate(line) if c == "{"):
        for j in (j for j in range(len(line), i, -1) if line[j - 1] == "}"):
            try:
                node = ast.parse(line[i:j], mode="eval").body
            except SyntaxError:
                continue
            if isinstance(node, ast.Dict) and node.keys and all(
                    isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
                if best is None or j - i > len(best):
                    best = line[i:j]
                break
    return best


_PRINTED_TEXT = re.compile(r"""print\(\s*[fF]?(["'])RESULT\b(?P<text>.*?)\1(?:\.format\((?P<args>.*?)\))?\s*\)+\s*$""")
_PAIR = re.compile(r"([A-Za-z_]\w*)[\"']?\s*[:=]\s*\{([^{}]*)\}")


def _result_pairs(line: str) -> str | None:
    """The result a RESULT print lays out as `key: {value}` pairs, as a dict literal: an f-string's own
    expressions (`{n_obs}`, `{t:.2f}`), or `.format`'s arguments in order: for every field when there are as
    many as fields, else for the empty ones (`{}`, `{:.2f}`). None unless every field gets exactly one value
    that parses."""
    m = _PRINTED_TEXT.match(line)
    if m is None:
        return None
    pairs = _PAIR.findall(m["text"])
    if not pairs:
        return None
    args: list[str] = []
    if m["args"] is not None:
        try:
            call = ast.parse(f"f({m['args']})", mode="eval").body
        except SyntaxError:
            return None
        if not isinstance(call, ast.Call) or call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
            return None
        args = [ast.unparse(a) for a in call.args]
    items = []
    in_order = len(args) == len(pairs)  # as many arguments as fields: `.format` was meant to fill them all
    for key, field in pairs:
        expr = re.split(r"!|:(?![^\[]*\])", field, maxsplit=1)[0].strip()  # `{t:.2f}`, `{x!r}`; not `{a[1:]}`
        if in_order or not expr:
            if not args:
                return None
            expr = args.pop(0)
        try:
            ast.parse(expr, mode="eval")
        except SyntaxError:
            return None
        items.append(f"{key!r}: {expr}")
    return None if args else "{" + ", ".join(items) + "}"


_QUOTED_PAIR = re.compile(r"""["']([A-Za-z_]\w*)["']\s*:\s*([^,{}"']+?)(?=\s*(?:,|\}|\)\s*$))""")


# `"key": " + str(value)` / `"key": " + value`: the pair written as string concatenation inside the text
_CONCATENATED_PAIR = re.compile(r"""["']([A-Za-z_]\w*)["']\s*:\s*["']\s*\+\s*(?:str\(([^()]+)\)|([A-Za-z_][\w.]*))""")


def _quoted_pairs(line: str) -> str | None:
    """The result a broken RESULT print still spells as `"key": value` pairs with the dict's braces lost in
    its text (`print("RESULT {" "n_obs": n})`, or concatenated, `print("RESULT {"x": " + str(x)})`), as a dict
    literal; None unless every value parses."""
    tail = line[line.index("RESULT"):]
    pairs = _QUOTED_PAIR.findall(tail) or [(k, a or b) for k, a, b in _CONCATENATED_PAIR.findall(tail)]
    items = []
    for key, expr in pairs:
        try:
            ast.parse(expr.strip(), mode="eval")
        except SyntaxError:
            return None
        items.append(f"{key!r}: {expr.strip()}")
    return "{" + ", ".join(items) + "}" if items else None


def result_print(text: str, err: SyntaxError) -> Edit | None:
    """A one-line `print` of the RESULT that does not parse (`print("RESULT {" + json.dumps({...})) + "}")`,
    a bracket too many around the JSON; `f"RESULT n: {n}, t: {:.2f}".format(n, t)`) but holds the result as a
    dict literal or as `key: {value}` pairs: that line prints the dict the way the contract says,
    `print("RESULT " + json.dumps({...}, default=float))`."""
    if not err.lineno:
        return None
    rows = text.splitlines(keepends=True)
    line = rows[err.lineno - 1]
    body = line.strip()
    if not (body.startswith("print(") and "RESULT" in body):
        return None
    found = _result_dict(body) or _result_pairs(body) or _quoted_pairs(body)
    if found is None:
        return None
    indent = line[:len(line) - len(line.lstrip())]
    new = f'{indent}print("RESULT " + json.dumps({found}, default=float))'
    rows[err.lineno - 1] = new + "\n"
    note = f"line {err.lineno} did not parse: it now prints the RESULT dict it wrote, `{new.strip()}`"
    return "".join(rows), note, (err.lineno, len(new))


SYNTAX_REPAIRS = (close_bracket, bare_units, result_print, from_as_import)


def make_it_parse(text: str) -> tuple[str, list[str]]:
    """Apply syntax repairs while each one moves the first syntax error past the edit it made; a script
    still not parsing at the end is returned unchanged (the model sees its own error)."""
    original, notes = text, []
    err = _error(text)
    for _ in range(MAX_EDITS):
        if err is None:
            break
        for step in SYNTAX_REPAIRS:
            got = step(text, err)
            if got is None:
                continue
            fixed, note, end = got
            new_err = _error(fixed)
            if new_err is None or (new_err.lineno or 0, new_err.offset or 0) > end:
                text, err = fixed, new_err
                notes.append(note)
                break
        else:
            break
    # `u` for the units written, `json` for a RESULT print: `add_missing_imports` adds them once the script parses
    return (text, notes) if err is None else (original, [])


def _gap(before: ast.expr | ast.keyword, node: ast.keyword) -> ast.expr:
    """A node spanning from the end of `before` to the end of `node`: `, key=value` with its comma."""
    gap = ast.Constant(value=None)
    gap.lineno, gap.col_offset = before.end_lineno or before.lineno, before.end_col_offset or 0
    gap.end_lineno, gap.end_col_offset = node.end_lineno, node.end_col_offset
    return gap


def repeated_keywords(text: str) -> tuple[str, list[str]]:
    """`SpectrumDatasetMaker(containment_correction=True, ..., containment_correction=True)` parses, but Python
    refuses to compile it ("keyword argument repeated"), so it would fail in the sandbox: a repeat with the
    same value is dropped. Repeats with different values are the model's to choose between."""
    tree = ast.parse(text)
    edits, notes = [], []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        items: list[ast.expr | ast.keyword] = sorted([*call.args, *call.keywords],
                                                     key=lambda n: (n.lineno, n.col_offset))
        seen: dict[str, str] = {}
        for i, kw in enumerate(items):
            if not isinstance(kw, ast.keyword) or kw.arg is None:
                continue
            value = ast.dump(kw.value)
            if seen.get(kw.arg) == value and i > 0:
                edits.append((_gap(items[i - 1], kw), ""))
                notes.append(f"line {kw.lineno}: `{kw.arg}=` was given twice the same value (Python refuses a "
                             f"repeated keyword): kept one, `{ast.unparse(kw)}`")
            seen.setdefault(kw.arg, value)
    return (splice(text, edits), notes) if edits else (text, [])
