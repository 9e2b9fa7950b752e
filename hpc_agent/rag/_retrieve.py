"""Retrieval for the agent: top-k snippets above a score threshold, from the prompt or from an error.

The first turn always carries a worked example when one reaches the threshold: if no tutorial or guide
piece with code is among the top k, the best such piece takes the last place (API fragments alone leave a
small model to invent the glue between calls). Examples get a longer budget in the prompt than API pieces. Hits are kept distinct:
one per symbol (a long docstring's continuation is the same snippet) and at most two pieces of one
tutorial or guide page (a third says what the first two said; another page or an API entry adds more);
a tutorial piece whose code is only imports is never returned. The first turn's best tutorial page is shown
as its whole script, condensed (imports merged, displays and local file round trips dropped), in place of
its pieces: a small model adapts a complete script far better than it glues fragments.
On a repair turn the query leads with what the error names (exception class, the missing or invalid
symbol), e.g. `AttributeError: 'Table' object has no attribute 'separation'` -> `Table separation`.
"""

from __future__ import annotations

import ast
import math
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import Any

from hpc_agent.checks import SYNTAX_ERROR
from hpc_agent.rag._corpus import SCRIPT_KIND
from hpc_agent.rag._embed import Embedder
from hpc_agent.rag._index import Hit, Index
from hpc_agent.rag._trim import for_request

SNIPPET_CHARS = 900  # per API snippet in the prompt: signature, summary and the first parameters
EXAMPLE_CHARS = 1800  # per worked example (tutorial or guide piece): a chain of cells, whole
SCRIPT_CHARS = 5000  # a tutorial's whole script, condensed: the data reduction, the fit and what follows
EXAMPLE_KINDS = ("tutorial", "guide")
SCRIPT_NOTE = ("a whole tutorial script, condensed: follow its steps, with the request's data selection, "
               "values and output instead of the tutorial's")
MAX_PER_PAGE = 2  # pieces of one tutorial or guide page among the hits


def is_example(hit: Hit) -> bool:
    """A tutorial or guide piece that shows code (not only prose)."""
    return hit.kind in EXAMPLE_KINDS and "```" in hit.text


_FENCED = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


def _boilerplate(code: str) -> bool:
    """Code that is nothing but imports (and logger set-up)."""
    try:
        body = ast.parse(code).body
    except SyntaxError:
        return False
    return bool(body) and all(
        isinstance(stmt, (ast.Import, ast.ImportFrom))
        or (isinstance(stmt, (ast.Assign, ast.Expr)) and "logging" in ast.unparse(stmt)) for stmt in body)


def imports_only(hit: Hit) -> bool:
    """A tutorial piece whose code is nothing but imports (and logger set-up): it shows no worked step, and
    small models send it back as their whole answer. Never retrieved; the repairs add imports anyway."""
    if hit.kind not in EXAMPLE_KINDS:
        return False
    blocks = _FENCED.findall(hit.text)
    return bool(blocks) and all(_boilerplate(b) for b in blocks)


def without_import_cells(text: str) -> str:
    """A worked example without its cells of imports only: a 0.5B model copies the first code block it sees
    as its whole answer, and the repairs add missing imports anyway. The room goes to the worked steps."""
    return _FENCED.sub(lambda m: "" if _boilerplate(m.group(1)) else m.group(0), text).replace("\n\n\n", "\n\n")


@dataclass(frozen=True)
class Retrieval:
    """What one retrieval returned and why: recorded per attempt in the bundle and the traces."""

    query: str
    hits: tuple[Hit, ...]
    withheld: str = ""  # why nothing was retrieved on purpose (empty when retrieval ran)

    @property
    def ids(self) -> list[str]:
        return [h.id for h in self.hits]

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"query": self.query,
                                  "snippets": [{k: v for k, v in asdict(h).items() if k != "text"} for h in self.hits]}
        if self.withheld:
            record["withheld"] = self.withheld
        return record


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, *, k: int = 4, min_score: float = 0.3,
                 mode: str = "hybrid", whole_script: bool = True) -> None:
        self.index = index
        self.embedder = embedder
        self.k = k
        self.min_score = min_score
        self.mode = mode
        self.whole_script = whole_script
        self._scripts: list[Hit] | None = None  # the tutorials' whole scripts, read once

    def _ranked(self, vector: list[float], query: str, k: int, floor: float, kinds: tuple[str, ...] = ()
                ) -> list[Hit]:
        """The top `k` distinct hits reaching `floor`, from a deeper list of candidates."""
        hits: list[Hit] = []
        pages: Counter[str] = Counter()  # example pieces taken per page
        for h in self.index.search(vector, query, 4 * k, self.mode, kinds=kinds):
            example = h.kind in EXAMPLE_KINDS
            if any(h.symbol == s.symbol for s in hits) or (example and pages[h.source] >= MAX_PER_PAGE) \
                    or imports_only(h):
                continue
            pages[h.source] += int(example)
            hits.append(h)
            if len(hits) == k:
                break
        return [h for h in hits if h.score >= floor]

    def search(self, query: str, k: int | None = None, min_score: float | None = None) -> Retrieval:
        k = self.k if k is None else k
        floor = self.min_score if min_score is None else min_score
        vector = self.embedder.embed([query])[0]
        return Retrieval(query, tuple(self._ranked(vector, query, k, floor)))

    def for_prompt(self, prompt: str) -> Retrieval:
        """The top k for the request, one of them a worked example if any reaches the threshold."""
        vector = self.embedder.embed([prompt])[0]
        hits = self._ranked(vector, prompt, self.k, self.min_score)
        if not any(is_example(h) for h in hits):
            examples = self._ranked(vector, prompt, max(4, self.k), self.min_score, kinds=EXAMPLE_KINDS)
            best = next((h for h in examples if is_example(h)), None)
            if best is not None:
                hits = [*hits[:self.k - 1], best] if len(hits) >= self.k else [*hits, best]
        return Retrieval(prompt, tuple(self._with_whole_script(prompt, hits)))

    def _with_whole_script(self, prompt: str, hits: list[Hit]) -> list[Hit]:
        """The tutorial script that uses the API the request names, in place of that page's pieces (last:
        nearest the request), cut to the request's part (`_trim.py`). A small model adapts a complete script;
        from pieces it leaves the glue undefined (`observations`, `on_region` used but never made)."""
        if not self.whole_script:
            return hits
        if self._scripts is None:
            self._scripts = self.index.scripts()
        script = best_script(prompt, self._scripts)
        if script is None:
            return hits
        page = script.symbol.rsplit("#", 1)[0]
        script = replace(script, text=for_request(script.text, prompt))  # without the tutorial's tail and detours
        return [*[h for h in hits if h.symbol.rsplit("#", 1)[0] != page][:self.k - 1], script]

    def for_error(self, prompt: str, error_text: str) -> Retrieval:
        """Snippets for a failed attempt; none for a run that failed in the script's own Python (see
        `concerns_the_library`)."""
        query = error_query(prompt, error_text)
        return self.search(query) if concerns_the_library(error_text) else Retrieval(query, ())


_CLASS_NAME = re.compile(r"\b[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+\b")  # DataStore, SpectrumDatasetMaker, TeV
SCRIPT_MIN_SHARED = 3  # classes a script must use of those the request names ...
SCRIPT_MIN_COVER = 0.5  # ... and this share of them, weighted by rarity among the scripts


def best_script(prompt: str, scripts: list[Hit]) -> Hit | None:
    """The tutorial script using most of the classes the request names, each weighted by its rarity among
    the scripts (`DataStore` is in nearly all of them, `ReflectedRegionsBackgroundMaker` in a few); the
    shorter script among near-equals. None when the request names too few classes for a clear choice: a
    question in a user's words keeps the pieces similarity finds."""
    if not scripts:
        return None
    used = [set(_CLASS_NAME.findall(h.text)) for h in scripts]
    df = Counter(name for names in used for name in names)
    named = {n for n in _CLASS_NAME.findall(prompt) if 0 < df[n] < len(scripts)}
    weight = {n: math.log(len(scripts) / df[n]) for n in named}
    total = sum(weight.values())
    if len(named) < SCRIPT_MIN_SHARED or total <= 0:
        return None
    ranked = sorted(((sum(weight[n] for n in named & names) / total, len(named & names), -len(h.text), h)
                     for h, names in zip(scripts, used)), key=lambda r: r[:3], reverse=True)
    best_cover = ranked[0][0]
    cover, shared, _, hit = min((r for r in ranked if r[0] >= best_cover - 0.05), key=lambda r: len(r[3].text))
    return hit if cover >= SCRIPT_MIN_COVER and shared >= SCRIPT_MIN_SHARED else None


_SYMBOL_PATTERNS = (
    re.compile(r"'([\w.]+)' object has no attribute '(\w+)'"),
    re.compile(r"module '([\w.]+)' has no attribute '(\w+)'"),
    re.compile(r"cannot import name '(\w+)' from '([\w.]+)'"),
    re.compile(r"No module named '([\w.]+)'"),
    re.compile(r"name '(\w+)' is not defined"),
    re.compile(r"undefined name '(\w+)'"),
    re.compile(r"unexpected keyword argument '(\w+)'"),
    re.compile(r"(\w+)\(\) missing \d+ required positional arguments?: (.+)"),
    re.compile(r"(\w+)\(\) got an unexpected keyword argument '(\w+)'"),
)
_EXC = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", re.MULTILINE)


def error_symbols(error_text: str) -> list[str]:
    """Names an error points at (classes, attributes, modules, arguments), in order, without repeats."""
    found: list[str] = []
    for pattern in _SYMBOL_PATTERNS:
        for m in pattern.finditer(error_text):
            for g in m.groups():
                for name in re.findall(r"[\w.]+", g):
                    if name not in found:
                        found.append(name)
    return found


_TRACEBACK_FRAME = re.compile(r'File "([^"]+)", line \d+')
_LIBRARY_PATH = re.compile(r"[/\\](?:gammapy|astropy|regions)[/\\]")
_PLAIN_OWNER = re.compile(r"'(?:numpy\.\w+|int|float|str|list|dict|tuple|set|bool|NoneType)' object has no attribute '\w+'")


def concerns_the_library(error_text: str) -> bool:
    """Whether documentation can help: a traceback that names a symbol or passes through Gammapy, astropy or
    regions code does; one raised in the script or the standard library (json refusing a Quantity, a
    ZeroDivisionError, an attribute asked of a numpy number or a list) does not, and the request's nearest
    snippets only lead a small model off (it took `DataStore.copy_obs` from them). Nor does a script that does
    not parse: the 0.5B copied the snippets' signatures and numpydoc sections into its next script. Nor does a
    column missing from an astropy table (the feedback names the release's real columns and where each is
    read; f43: a `KeyError: 'EVENT_COUNT'` fetched `get_observation_groups("EVENT_TYPE")`, used for three
    turns). Other findings without a traceback (static errors, checks) may."""
    findings = [line for line in error_text.splitlines() if line.strip()]
    if findings and all(line.startswith(SYNTAX_ERROR) for line in findings):
        return False
    exceptions = _EXC.findall(error_text)
    if exceptions and exceptions[-1][0].endswith("KeyError") and "astropy/table" in error_text:
        return False
    frames = _TRACEBACK_FRAME.findall(error_text)
    if not frames or any(_LIBRARY_PATH.search(f) for f in frames):
        return True
    return bool(error_symbols(_PLAIN_OWNER.sub("", error_text)))  # `'numpy.float32' object has no attribute 'to'`: no API


def error_query(prompt: str, error_text: str) -> str:
    """The error's own words first (exception line, symbols), then the request: MiniLM reads 256 tokens."""
    parts = []
    exc = _EXC.findall(error_text)
    if exc:
        cls, msg = exc[-1]
        parts.append(f"{cls.rsplit('.', 1)[-1]}: {msg[:300]}")
    symbols = error_symbols(error_text)
    if symbols:
        parts.append("Look up: " + " ".join(symbols))
    if not parts and error_text.strip():
        parts.append(error_text.strip().splitlines()[-1][:300])
    parts.append(prompt[:600])
    return "\n".join(parts)


def _cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters at a line break; a code fence left open is closed."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit("\n", 1)[0]
    return cut + ("\n```" if cut.count("```") % 2 else "") + "\n..."


def render(retrieval: Retrieval, max_chars: int = SNIPPET_CHARS, example_chars: int = EXAMPLE_CHARS) -> str:
    """Snippets, each delimited and headed by its symbol, for a user message."""
    blocks = []
    for i, h in enumerate(retrieval.hits, 1):
        example = h.kind in EXAMPLE_KINDS
        if h.kind == SCRIPT_KIND:
            text, what = _cut(h.text, SCRIPT_CHARS), SCRIPT_NOTE
        else:
            text = _cut(without_import_cells(h.text) if example else h.text, example_chars if example else max_chars)
            what = h.kind
        blocks.append(f"--- snippet {i}: {h.symbol} ({what}) ---\n{text}\n--- end of snippet {i} ---")
    return "\n\n".join(blocks)
