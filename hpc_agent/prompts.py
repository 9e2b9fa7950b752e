"""The prompt contract: system rules, the first messages, and repair summaries with Gammapy hints."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hpc_agent.checks import NO_SELECTION, TABLES_ONLY
from hpc_agent.data import RELEASE
from hpc_agent.records import Attempt

Message = dict[str, str]

# The idiom every analysis of the release starts with, written once: the rules show it, the feedback repeats
# it, the positions context fills in a source, and the repairs define its variables when a script uses them
# without assigning them.


def release_path(*parts: str) -> str:
    """The expression a script uses for the release folder (or a path inside it)."""
    return f'os.path.join(os.environ["PHOTON_STORAGE"], "{RELEASE}"' + "".join(f", {p!r}" for p in parts) + ")"


RELEASE_PATH = release_path()
OPEN_RELEASE = f"data_store = DataStore.from_dir({RELEASE_PATH})"
OBS_TABLE = "table = data_store.obs_table"
POINTING = 'pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")'

SYSTEM_TEMPLATE = """\
You write Gammapy analysis scripts that run unattended on a compute node.

Installed versions: Gammapy {gammapy_version}, Python 3.11. Use the current Gammapy {gammapy_version} API
(e.g. `gammapy.data.DataStore`, `gammapy.makers`, `gammapy.datasets`, `gammapy.modeling`), not older idioms.

Non-negotiable rules:
1. Return exactly ONE complete Python script, through the `return_python` tool as {{"code": "<script>"}}.
   If you cannot call tools, answer with one ```python fenced block and no prose.
2. Import everything the script uses (including `os`).
3. No interactive plotting or display: never call `plt.show()`, `display()`, `.peek()` or IPython magics.
   Save figures to files if you make any.
4. Read data only through the environment variable PHOTON_STORAGE (GAMMAPY_DATA holds the same path):
   the H.E.S.S. DL3 DR1 release is at `{release_path}`.
   Never hard-code absolute data paths. There is no network access.
5. Never select observations by the TARGET_NAME or OBJECT columns (names are inconsistent);
   select by sky position: the separation of (RA_PNT, DEC_PNT) from the source position.
   There is no name resolver (no network): use the positions given to you as numbers.
   Opening the release and selecting observations around a position look like this:
   ```python
   {open_release}
   {obs_table}  # astropy Table, one row per observation
   source = SkyCoord(ra_deg, dec_deg, unit="deg", frame="icrs")
   {pointing}
   selected = table[pointing.separation(source) < radius_deg * u.deg]
   # a value the index holds per observation is a column of `selected`: selected["COLUMN"] (numbers, units below)
   observations = data_store.get_observations(list(selected["OBS_ID"]))  # events and IRFs, for analyses
   # a value each event has is a column of each observation's event list (columns below):
   energies = np.concatenate([obs.events.table["ENERGY"].data for obs in observations])
   ```
6. Print every result as one line `RESULT {{json}}`, e.g. `print("RESULT " + json.dumps({{"n_obs": 20}}))`,
   with plain numbers (float/int), not astropy Quantities.
7. A question about values the release's tables hold (how many observations or events, a total, mean or
   extreme of a column) is answered from those tables alone (`data_store.obs_table`, `observation.events.table`);
   makers, datasets, IRFs and fits are for analyses that ask for them.
"""

ASK = "Return the complete script now."
REPAIR_ASK = "Return the complete corrected script."
USER_TEMPLATE = "{prompt}\n\n" + ASK


def system_message(gammapy_version: str, data_layout: str | None = None) -> str:
    """The rules; `data_layout` (the release's tables and columns, read from the data) is appended."""
    rules = SYSTEM_TEMPLATE.format(gammapy_version=gammapy_version, release_path=RELEASE_PATH,
                                   open_release=OPEN_RELEASE, obs_table=OBS_TABLE, pointing=POINTING)
    return rules + (f"\nThe release's tables:\n{data_layout}\n" if data_layout else "")


REFERENCE_HEADER = ("Reference material for this Gammapy version (retrieved from its documentation; use only what "
                    "the request needs):")


def initial_messages(prompt: str, gammapy_version: str, context: str | None = None,
                     data_layout: str | None = None) -> list[Message]:
    """System rules (with the data's layout), optional context (source positions, retrieved material, each
    with its own header), then the user's request."""
    messages: list[Message] = [{"role": "system", "content": system_message(gammapy_version, data_layout)}]
    if context:
        messages.append({"role": "user", "content": context})
    messages.append({"role": "user", "content": USER_TEMPLATE.format(prompt=prompt)})
    return messages


def assistant_turn(script: str | None, raw: str | None) -> Message:
    """The model's answer as plain text, so the history replays on any server (no tool-call ids)."""
    if script is not None:
        return {"role": "assistant", "content": f"```python\n{script}\n```"}
    return {"role": "assistant", "content": raw or "(empty answer)"}


@dataclass(frozen=True)
class Hint:
    pattern: re.Pattern[str]
    text: str


def _h(pattern: str, text: str) -> Hint:
    return Hint(re.compile(pattern, re.MULTILINE), text)


# Known Gammapy / astropy pitfalls, matched against the error output. Each hint names the right API.
HINTS: tuple[Hint, ...] = (
    _h(r"No module named 'gammapy\.io'|read_hess|from gammapy import \w+ as", "Gammapy has no `gammapy.io`; open data with "
       "`from gammapy.data import DataStore; ds = DataStore.from_dir(path)`, then `ds.obs_table`, `ds.get_observations(ids)`."),
    _h(r"'Column' object has no attribute '(separation|angle|distance)'", "Table columns are plain arrays: build "
       "`SkyCoord(table['RA_PNT'], table['DEC_PNT'], unit='deg')` and call `.separation(target)` on it."),
    _h(r"KeyError: '(PHOTON_STORAGE|GAMMAPY_DATA)'", "Read the data folder with `os.environ['PHOTON_STORAGE']`; it is set "
       "in the run environment."),
    _h(r"FileNotFoundError|No such file or directory", "The release is at `os.path.join(os.environ['PHOTON_STORAGE'], "
       "'hess-dl3-dr1')` with `obs-index.fits.gz`, `hdu-index.fits.gz` and `data/`; use `DataStore.from_dir` on that folder."),
    _h(r"NameError: name '(os|np|u|json|SkyCoord|Table)' is not defined|undefined name '(os|np|u|json|SkyCoord|Table)'", "Import every module you use at the top "
       "(`import os, json`, `import numpy as np`, `import astropy.units as u`, `from astropy.coordinates import SkyCoord`)."),
    _h(r"between instances of '(?:Time' and '\w+|\w+' and 'Time)'", "An event's TIME (`observation.events.time`) is an "
       "astropy Time, an instant; a number or a Quantity such as `10 * u.min` is a duration, and the two do not "
       "compare. The time since the run began is `dt = observation.events.time - observation.tstart`; compare "
       "that with durations (`(dt >= 0 * u.min) & (dt < 10 * u.min)`), and an instant only with another Time."),
    _h(r"UnitConversionError|UnitTypeError|TypeError: .*Quantity", "Mind astropy units: convert with `.to(u.deg)` / "
       "`.to_value(unit)` and pass plain floats to json."),
    _h(r"object of type 'FluxPoints' has no len|Object of type \w*(Map|FluxPoints) is not JSON serializable"
       r"|`FluxPoints` has no `|'FluxPoints' object has no attribute",
       "What `LightCurveEstimator.run` and `FluxPointsEstimator.run` return (`FluxPoints`) is not a list, and its "
       "`.flux` is a map. Read the values from its table: `table = lc.to_table(format=\"lightcurve\", "
       "sed_type=\"flux\")` (one row per time bin; `format=\"gadf-sed\"` for flux points, one row per energy bin), "
       "`values = np.ravel(table[\"flux\"].quantity.to_value(\"cm-2 s-1\"))`, then `len(table)` and "
       "`float(np.nanmean(values))`. A map's numbers are `m.data` (or `m.quantity`)."),
    _h(r"is not JSON serializable", "json.dumps needs plain Python numbers: wrap each value, `float(x)` or "
       "`int(n)` (numpy numbers too); only an astropy Quantity needs `float(q.to_value(unit))` first."),
    _h(r"ImportError: cannot import name|AttributeError: module 'gammapy", "That name does not exist in this Gammapy "
       "version. Common homes: gammapy.data (DataStore, Observation), gammapy.maps (MapAxis, RegionGeom, WcsGeom), "
       "gammapy.makers (SpectrumDatasetMaker, ReflectedRegionsBackgroundMaker, SafeMaskMaker, MapDatasetMaker, "
       "FoVBackgroundMaker), gammapy.datasets (SpectrumDataset, MapDataset, Datasets), gammapy.modeling (Fit), "
       "gammapy.modeling.models (PowerLawSpectralModel, SkyModel), gammapy.estimators (FluxPointsEstimator)."),
    _h(r"has no attribute 'integral_flux'", "Spectral models have no `integral_flux`: use `model.integral(emin, emax)` "
       "for the integral flux and `model.energy_flux(emin, emax)` for the energy flux."),
    _h(r"energy_edges|must (be|lie) on|not (a subset|contained) of", "LightCurveEstimator/FluxPointsEstimator energy "
       "edges must coincide with edges of the dataset's reconstructed-energy axis; build that axis with "
       "`MapAxis.from_energy_bounds(emin, emax, nbin, per_decade=True, name='energy')` so the edges line up."),
    _h(r"in get_observations|Cannot compare structured or void", "`data_store.get_observations(obs_ids)` takes "
       "observation ids, not table rows: `data_store.get_observations(list(selected[\"OBS_ID\"]))`."),
    _h(r"has no attribute '(index|indices|idx|ids|obs_ids|rows)'",
       "Rows picked by a boolean mask are read by indexing with the mask, no attribute: `selected = table[mask]`, "
       "their ids `list(selected[\"OBS_ID\"])`, their number `len(selected)` (or `int(mask.sum())`); positions "
       "of the True entries are `np.nonzero(mask)[0]`."),
    _h(r"'Row' object has no attribute", "A table row is read by column name, `row[\"COLUMN\"]`; a whole column is "
       "`table[\"COLUMN\"]` (a sum over selected rows: `float(selected[\"COLUMN\"].sum())`)."),
    _h(r"'numpy\.\w+' object has no attribute '(value|to_value|to|unit)'", "That is a plain numpy number, not an astropy "
       "Quantity: table cells hold numbers in the column's unit (listed with the release's tables). Use `float(x)` "
       "and convert by hand, or make a Quantity first (`x * u.s`)."),
    _h(r"observations\.py.*\n(?:.*\n){0,6}.*is not in list", "`Observations` (what `get_observations` returns) is a "
       "list of `Observation` objects indexed by position or observation id, not by column name. Per-observation "
       "values of the observation index are columns of `data_store.obs_table`: `selected[\"COLUMN\"]`."),
    _h(r"models[/\\]core\.py.*\n(?:.*\n){0,6}.*ValueError: '[^']*' is not in list", "The estimator's `source=` names a "
       "model the datasets do not hold. Make it under that name, `model = SkyModel(spectral_model=spectral_model, "
       "name=\"<the source= name>\")`, and attach it before running the estimator: `datasets.models = [model]`."),
    _h(r"selection = set\(selection\)", "`SpectrumDatasetMaker(selection=[\"counts\", \"exposure\", \"edisp\"])` and "
       "`MapDatasetMaker(selection=...)` take a list of what to compute; the region goes into the empty dataset's "
       "geometry: `RegionGeom.create(region=on_region, axes=[energy_axis])`."),
    _h(r"matplotlib|plt\.show|display", "Do not show plots; remove plotting or save with `plt.savefig('x.png')`."),
)


def hints_for(text: str) -> list[str]:
    return [h.text for h in HINTS if h.pattern.search(text)]


def script_hints(script: str | None) -> list[str]:
    """Hints read off a script that ran and failed: idioms it needed and did not use."""
    if not script:
        return []
    hints = []
    if "RA_PNT" in script and "DEC_PNT" in script and ".separation(" not in script:
        hints.append("Angular distances on the sky come from SkyCoord, not from differences of RA and Dec: "
                     "`pointing = SkyCoord(table['RA_PNT'], table['DEC_PNT'], unit='deg', frame='icrs')`, then "
                     "`pointing.separation(source) < radius_deg * u.deg`.")
    return hints


_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt))(?::|$)", re.MULTILINE)


def exception_class(stderr: str) -> str | None:
    """The class of the last exception a Python traceback names, e.g. `ModuleNotFoundError`."""
    found = _EXC_LINE.findall(stderr)
    return found[-1].rsplit(".", 1)[-1] if found else None


def traceback_tail(stderr: str, lines: int = 30) -> str:
    """The last `lines` lines of the last traceback (or of stderr when there is none)."""
    start = stderr.rfind("Traceback (most recent call last)")
    text = stderr[start:] if start >= 0 else stderr
    return "\n".join(text.rstrip().splitlines()[-lines:])


IDIOM_RA, IDIOM_DEC, IDIOM_RADIUS = "RA_DEG", "DEC_DEG", "RADIUS_DEG"  # numbers the idiom leaves to the request
SELECTION_IDIOM = f"""\
import os
import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.data import DataStore

{OPEN_RELEASE}
{OBS_TABLE}
source = SkyCoord({IDIOM_RA}, {IDIOM_DEC}, unit="deg", frame="icrs")  # the source position, as numbers
{POINTING}
selected = table[pointing.separation(source) < {IDIOM_RADIUS} * u.deg]  # the radius the request asks for
obs_ids = list(selected["OBS_ID"])
observations = data_store.get_observations(obs_ids)"""

# Rules whose message alone does not tell a small model what to write: the working idiom, as code.
IDIOMS: tuple[tuple[str, str], ...] = (
    ("selects by the", f"Select observations by position like this:\n```python\n{SELECTION_IDIOM}\n```"),
    (NO_SELECTION, f"Select observations by position like this:\n```python\n{SELECTION_IDIOM}\n```"),
    ("hard-coded data path", f"Open the release like this:\n```python\nimport os\nfrom gammapy.data import DataStore\n"
     f"{OPEN_RELEASE}\n```"),
    (TABLES_ONLY, "Read the tables like this:\n```python\nimport os\nfrom gammapy.data import DataStore\n"
     f"{OPEN_RELEASE}\n{OBS_TABLE}  # one row per observation: table[\"OBS_ID\"], table[\"LIVETIME\"], ...\n"
     "events = data_store.obs(obs_id).events.table  # one row per event: events[\"ENERGY\"], ...\n```"),
    ("SkyCoord.from_name", "Write source positions as numbers: `SkyCoord(ra_deg, dec_deg, unit=\"deg\", frame=\"icrs\")`."),
)
NO_RESULT = "no `RESULT {json}` line"
_KEY = re.compile(r'"([A-Za-z_]\w*)"\s*:')


def requested_keys(prompt: str) -> tuple[str, ...]:
    """The RESULT keys a request names (`"n_obs": ...` or `RESULT {"n_obs": <int>}`), in order."""
    return tuple(dict.fromkeys(_KEY.findall(prompt)))


def result_idiom(keys: tuple[str, ...] = ()) -> str:
    """How a script ends, with the request's own keys; each value is a variable of that name to compute
    (a placeholder such as `value` gets copied literally by small models, then is undefined). Inline, not a
    fenced block: shown a block, a 0.5B model answers with that block alone."""
    keys = keys or ("answer",)
    body = ", ".join(f'"{k}": {k}' for k in keys)
    return ("Keep your whole analysis: compute the requested values into variables named "
            + ", ".join(f"`{k}`" for k in keys) + ", put `import json` at the top, and make the last line of "
            f"the complete script `print(\"RESULT \" + json.dumps({{{body}}}, default=float))`.")


def _result_unreadable(attempt: Attempt) -> bool:
    """The run ended well but its RESULT line was missing or not JSON: the output idiom is what it needs."""
    ex = attempt.execution
    return ex is not None and ex.ok and any(
        not c.passed and ("not a JSON object" in c.message or NO_RESULT in c.message)
        for c in attempt.validation.checks)


def idioms_for(errors: tuple[str, ...], result_keys: tuple[str, ...] = ()) -> list[str]:
    """The working idiom for each broken rule that has one."""
    found = [code for needle, code in IDIOMS if any(needle in e for e in errors)]
    return found + ([result_idiom(result_keys)] if any(NO_RESULT in e for e in errors) else [])
ERROR_LINE = re.compile(r"^line (\d+):")  # how a static error names its line


def quote_lines(script: str | None, errors: tuple[str, ...]) -> list[str]:
    """Each error followed by the script line it names, so a model sees exactly what to change."""
    rows = (script or "").splitlines()
    out = []
    for e in errors:
        m = ERROR_LINE.match(e)
        n = int(m.group(1)) if m else 0
        out.append(f"- {e}" + (f"\n    > {rows[n - 1].strip()}" if 0 < n <= len(rows) else ""))
    return out


def repair_message(attempt: Attempt, max_stderr_lines: int = 15, repeats: int | None = None,
                   extra_hints: tuple[str, ...] = (), result_keys: tuple[str, ...] = ()) -> str:
    """One compact user turn after a failed attempt: what went wrong and how to fix it.

    `repeats` names an earlier attempt whose script this one repeated unchanged (small models do).
    """
    parts: list[str] = [f"Attempt {attempt.index} failed ({attempt.failure})."]
    text_for_hints = ""
    if repeats is not None:
        parts.append(f"Your script is identical to attempt {repeats}, which failed the same way. "
                     "Do not repeat it: change the lines quoted below.")
    if attempt.script is None:
        parts.append("No script was found in your answer. Return the complete script (the `return_python` "
                     "tool, or one ```python fenced block).")
    if attempt.repairs:
        parts.append("Before checking it, the harness fixed your script (the script above is the fixed one; "
                     "write these yourself next time):\n" + "\n".join(f"- {r}" for r in attempt.repairs))
    if attempt.static_errors:
        parts.append("The script was rejected before running:\n"
                     + "\n".join(quote_lines(attempt.script, attempt.static_errors)))
        text_for_hints += "\n".join(attempt.static_errors)
        idioms = idioms_for(attempt.static_errors, result_keys)
        if idioms:
            parts.append("\n\n".join(idioms))
    ex = attempt.execution
    if ex is not None:
        if ex.killed == "timeout":
            parts.append(f"It was killed after {ex.duration_s:.0f} s (time limit). Do less work or avoid loops "
                         "that never end.")
        elif ex.killed == "memory":
            parts.append("It was killed for using too much memory. Use fewer observations or coarser maps.")
        elif ex.killed == "output":
            parts.append("It printed far too much output and was stopped. Print only RESULT lines and short logs.")
        if attempt.exception:
            parts.append(f"Exception: {attempt.exception}")
        tail = traceback_tail(ex.stderr)
        if tail and "Traceback" in tail:
            parts.append("Traceback (last lines):\n" + tail)
        elif ex.stderr.strip():
            parts.append("stderr (tail):\n" + "\n".join(ex.stderr.rstrip().splitlines()[-max_stderr_lines:]))
        text_for_hints += ex.stderr
    # exit code and static rules are already described above
    failed_checks = [c for c in attempt.validation.checks if not c.passed and c.name not in ("exit_code", "static")]
    if failed_checks:
        parts.append("Validation failed:\n" + "\n".join(f"- {c.name}: {c.message}" for c in failed_checks))
        if _result_unreadable(attempt):
            parts.append(result_idiom(result_keys))
    hints = [*extra_hints, *hints_for(text_for_hints), *(script_hints(attempt.script) if ex is not None else [])]
    if hints:
        parts.append("Hints:\n" + "\n".join(f"- {h}" for h in hints))
    parts.append(REPAIR_ASK)
    return "\n\n".join(parts)


# Lines only the harness writes (and a traceback's caret markers): a script holding one is the model copying
# its feedback instead of answering it; kept in the conversation, that answer is copied again (the 0.5B did,
# twice), so the loop restarts instead.
HARNESS_LINES = frozenset({ASK, REPAIR_ASK, REFERENCE_HEADER, "Validation failed:", "Traceback (last lines):",
                           "Traceback (most recent call last):"})
_ECHOED = re.compile(r"^(?:~*\^[~^]{2,}|--- (?:end of )?snippet \d+\b.*)$")  # `~~^^^^~~` marks a traceback's span


def echoes_feedback(script: str | None) -> bool:
    """Whether the script holds a line of the harness's own feedback (a heading, a snippet marker, carets)."""
    return any(line in HARNESS_LINES or _ECHOED.match(line) for line in (r.strip() for r in (script or "").splitlines()))


# --- lessons: what a restarted conversation keeps of the failed attempts -----------------------------------

SCRIPT_FRAME = re.compile(r'File "[^"]*script\.py", line (\d+)')


def failing_line(script: str | None, stderr: str) -> str | None:
    """The script's own line where the run's last traceback left the script (None when not found)."""
    frames = SCRIPT_FRAME.findall(traceback_tail(stderr, 200))
    rows = (script or "").splitlines()
    if not frames or not 0 < int(frames[-1]) <= len(rows):
        return None
    return rows[int(frames[-1]) - 1].strip()


def _last_exception_line(stderr: str) -> str:
    lines = [ln for ln in traceback_tail(stderr).splitlines() if _EXC_LINE.match(ln)]
    return lines[-1].strip() if lines else ""


def failure_signature(attempt: Attempt) -> str:
    """Equal for attempts that failed in the same way (same static errors, or same exception line)."""
    if attempt.static_errors:
        return "static:" + "|".join(ERROR_LINE.sub("", e) for e in attempt.static_errors)
    if attempt.execution is not None and not attempt.execution.ok:
        return f"run:{attempt.execution.killed}:{_last_exception_line(attempt.execution.stderr)}"
    return attempt.failure + ":" + "|".join(c.message for c in attempt.validation.checks if not c.passed)


def lessons(attempt: Attempt, extra_hints: tuple[str, ...] = (), result_keys: tuple[str, ...] = ()) -> list[str]:
    """What one failed attempt teaches, as short lines that need no script beside them."""
    if attempt.script is None:
        return ["Answer with the complete script in one ```python fenced block."]
    out: list[str] = []
    rows = attempt.script.splitlines()
    for e in attempt.static_errors:
        m = ERROR_LINE.match(e)
        code = rows[int(m.group(1)) - 1].strip() if m and 0 < int(m.group(1)) <= len(rows) else ""
        out.append(f"`{code}` was rejected: {ERROR_LINE.sub('', e).strip()}" if code else e)
    out += idioms_for(attempt.static_errors, result_keys)
    ex = attempt.execution
    text = "\n".join(attempt.static_errors)
    if ex is not None and ex.killed == "timeout":
        out.append("A script was killed at the time limit: do less work.")
    elif ex is not None and not ex.ok:
        line, error = failing_line(attempt.script, ex.stderr), _last_exception_line(ex.stderr)
        out.append(f"`{line}` raised {error}" if line else f"The script raised {error or 'an error'}")
        text += ex.stderr
    elif not attempt.static_errors:
        out += [f"{c.name}: {c.message}" for c in attempt.validation.checks if not c.passed]
        out += [result_idiom(result_keys)] if _result_unreadable(attempt) else []
    out += [*extra_hints, *hints_for(text), *(script_hints(attempt.script) if ex is not None else [])]
    return out


def lessons_text(found: list[str]) -> str:
    rows = "\n".join(f"- {x}" for x in dict.fromkeys(found))
    return ("Earlier scripts for this request failed. Write a new script from scratch that avoids these "
            f"mistakes:\n{rows}")
