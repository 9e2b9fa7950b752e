"""Static rules reject scripts before they spend a sandbox run."""

from __future__ import annotations

import pytest

from conftest import script
from hpc_agent.checks import static_errors


def test_good_script_passes() -> None:
    assert static_errors(script("msh1552_count_ok.py")) == []


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("import json\nprint('RESULT ' + json.dumps({})\n", "SyntaxError at line"),
        ("%matplotlib inline\nprint('RESULT {}')\n", "SyntaxError"),
        ("import matplotlib.pyplot as plt\nplt.plot([1])\nplt.show()\nprint('RESULT {}')\n", "`.show()`"),
        ("display(1)\nprint('RESULT {}')\n", "`display()`"),
        ("t = None\nsel = t['TARGET_NAME'] == 'Crab'\nprint('RESULT {}')\n", "TARGET_NAME column"),
        ("t = None\nsel = t['OBJECT'] == 'Crab'\nprint('RESULT {}')\n", "OBJECT column"),
        ("p = '/data/hess-dl3-dr1'\nprint('RESULT {}')\n", "hard-coded data path"),
        ("print(42)\n", "no `RESULT {json}` line"),
        ("x = os.environ['PHOTON_STORAGE']\nprint('RESULT {}')\n", "undefined name 'os'"),
    ],
)
def test_rule_violations(code: str, needle: str) -> None:
    errors = static_errors(code)
    assert any(needle in e for e in errors), errors


def test_result_not_required_when_not_asked() -> None:
    assert static_errors("print(42)\n", require_result=False) == []


def test_fstring_result_counts() -> None:
    assert static_errors("import json\nprint(f\"RESULT {json.dumps({'a': 1})}\")\n") == []


def test_each_problem_is_reported_once() -> None:
    errors = static_errors("p = os.path.join(os.environ['PHOTON_STORAGE'])\nprint('RESULT {}')\n")
    assert errors == ["line 1: undefined name 'os' (missing import or typo)"]
