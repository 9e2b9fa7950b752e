"""Keeping the best script: the merge of a regressed answer into it, and how attempts are ordered."""

from __future__ import annotations

from conftest import script
from hpc_agent.focus import failure_lines, focused_merge, progress
from hpc_agent.records import Attempt, Check, ExecResult, Usage, Validation

BROKEN = script("msh1552_count_broken.py")  # runs, then raises on line 11 (`ra.separation`)
FIX = """pointing = SkyCoord(table["RA_PNT"], table["DEC_PNT"], unit="deg", frame="icrs")
n_obs = int((pointing.separation(target) < 2 * u.deg).sum())
"""


def _attempt(script_text: str, failure: str, errors: tuple[str, ...] = (), stderr: str = "") -> Attempt:
    execution = None if failure == "static" else ExecResult(backend="bwrap", exit_code=1, stdout="", stderr=stderr,
                                                            duration_s=1.0)
    return Attempt(index=1, script=script_text, usage=Usage(), static_errors=errors, execution=execution,
                   validation=Validation(passed=False, checks=(Check(name="x", passed=False),)), failure=failure)


def _regressed() -> str:
    """The model's next answer: line 11 fixed, the data store call broken, an import added."""
    return (BROKEN.replace("DataStore.from_dir(", "DataStore.from_directory(")
            .replace('ra = table["RA_PNT"]  # a Column: the static stage cannot type `ra`, so this fails only when it runs\n', "")
            .replace("n_obs = int((ra.separation(target) < 2).sum())\n", FIX)
            .replace("import os\n", "import os\n\nimport astropy.units as u\n"))


def test_the_fix_is_taken_where_the_best_script_failed_and_nothing_else() -> None:
    merged = focused_merge(BROKEN, {11}, _regressed())
    assert merged is not None
    assert "DataStore.from_dir(" in merged and "from_directory" not in merged  # the regression is left out
    assert FIX in merged and "ra.separation" not in merged  # the fix is in
    assert "import astropy.units as u" in merged  # an added line is taken wherever it is


def test_a_name_the_fix_needs_comes_with_it() -> None:
    base = "x = 1\nimport math\nw = 1\nk = 5\nresult = str(x * w)\nprint(result)\n"
    answer = "x = 2\nimport math\nwidth = 3\nk = 5\nresult = str(x * width)\nprint(result)\n"
    merged = focused_merge(base, {5}, answer)
    assert merged == "x = 1\nimport math\nwidth = 3\nk = 5\nresult = str(x * width)\nprint(result)\n"


def test_order_counts_when_a_taken_loop_needs_a_name() -> None:
    """s26, light-curve-crab: the taken loop appended to `datasets`, whose base list was in the replaced lines;
    a later `datasets = Datasets(datasets)` assigns the name too, but after the loop needs it."""
    base = ("x = 1\nimport math\ndatasets = []\nfor o in range(3):\n    datasets.append(o + b)\n"
            "datasets = tuple(datasets)\nprint(datasets)\n")
    answer = ("datasets = list()\nimport math\nfor p in range(3):\n    datasets.append(p)\n"
              "datasets = tuple(datasets)\nprint(datasets, math.pi)\n")
    merged = focused_merge(base, {5}, answer)
    assert merged is not None and merged.startswith("datasets = list()\n") and "math.pi" not in merged
    exec(compile(merged, "merged", "exec"), {})  # every name is defined before its use


def test_no_merge_that_leaves_a_name_undefined() -> None:
    base = "x = 1\nimport math\ny = x + z\nprint(y)\n"
    answer = "x = 2\nimport math\ny = x + dataset_empty\nprint(y)\n"  # the fix uses a name nothing defines
    assert focused_merge(base, {3}, answer) is None
    assert focused_merge(base, {3}, answer.replace("dataset_empty", "math.pi")) == base.replace("z", "math.pi")


def test_nothing_to_take_when_the_failing_statement_is_unchanged() -> None:
    answer = BROKEN.replace("DataStore.from_dir(", "DataStore.from_directory(")
    assert focused_merge(BROKEN, {11}, answer) is None
    assert focused_merge(BROKEN, {11}, BROKEN) is None
    assert focused_merge(BROKEN, {11}, "def (:\n") is None  # an answer that does not parse


def test_a_statement_over_several_lines_is_one_unit() -> None:
    base = "total = sum(\n    [1, 2],\n)\nprint(total)\n"
    answer = "total = sum(\n    [1, 2, 3],\n)\nprint(total)\n"
    # the whole call is the fix: merged is the answer itself, so there is nothing new to try
    assert focused_merge(base, {1}, answer) is None
    assert focused_merge(base + "x = 1\n", {1}, answer + "x = 2\n") == answer + "x = 1\n"


def test_failure_lines_and_progress() -> None:
    stderr = ('Traceback (most recent call last):\n  File "/w/script.py", line 11, in <module>\n'
              "    n_obs = int((ra.separation(target) < 2).sum())\nAttributeError: 'Column' object has no attribute 'separation'\n")
    ran = _attempt(BROKEN, "runtime", stderr=stderr)
    assert failure_lines(ran) == {11}
    rejected = _attempt(BROKEN, "static", errors=("line 7: `DataStore` has no `from_directory`", "line 3: x"))
    assert failure_lines(rejected) == {3, 7}
    assert failure_lines(_attempt(BROKEN, "static", errors=("selects no observations by position",))) is None
    assert progress(ran) > progress(rejected)
    fewer = _attempt(BROKEN, "static", errors=("line 7: `DataStore` has no `from_directory`",))
    assert progress(fewer) > progress(rejected)
    earlier = _attempt(BROKEN, "runtime", stderr=stderr.replace("line 11", "line 8"))
    assert progress(ran) > progress(earlier)  # a run that got further down the script
