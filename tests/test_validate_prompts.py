"""Validators and repair summaries."""

from __future__ import annotations

from hpc_agent.prompts import exception_class, hints_for, initial_messages, repair_message, traceback_tail
from hpc_agent.records import Attempt, ExecResult, Usage
from hpc_agent.validate import Expected, Numeric, ResultLines, default_validators, parse_results, validate

TB = """Traceback (most recent call last):
  File "/ws/script.py", line 10, in <module>
    n_obs = int((table["RA_PNT"].separation(target) < 2).sum())
AttributeError: 'Column' object has no attribute 'separation'
"""


def _ex(stdout: str = "", stderr: str = "", code: int | None = 0, killed: str | None = None) -> ExecResult:
    return ExecResult(backend="test", exit_code=code, stdout=stdout, stderr=stderr, duration_s=1.0, killed=killed)


def test_parse_results_merges_and_flags_bad_lines() -> None:
    values, bad = parse_results('noise\nRESULT {"a": 1}\nRESULT {"b": 2.5}\nRESULT not json\n')
    assert values == {"a": 1, "b": 2.5} and bad == ["RESULT not json"]


def test_default_validation() -> None:
    assert validate(_ex('RESULT {"n_obs": 20}'), default_validators()).passed
    v = validate(_ex("nothing"), default_validators())
    assert not v.passed and v.failures[0].name == "result_lines"
    assert not validate(_ex('RESULT {"n": 1}', code=1), default_validators()).passed
    assert not validate(_ex('RESULT {"n": 1}', code=None, killed="timeout"), default_validators()).passed


def test_numeric_and_required_keys() -> None:
    ex = _ex('RESULT {"n_obs": 20, "index": 2.61}')
    assert validate(ex, [Numeric({"n_obs": Expected(20), "index": Expected(2.6, rtol=0.01)})]).passed
    wrong = validate(ex, [Numeric({"n_obs": Expected(21)})])
    assert not wrong.passed
    # the model is told the value is wrong, never the expected one (it could print it); people see it
    assert "21" not in wrong.checks[0].message and wrong.checks[0].detail == "expected 21"
    assert not validate(ex, [Numeric({"flux": Expected(1.0)})]).passed
    assert not validate(ex, [ResultLines(required=("flux",))]).passed


def test_exception_class_and_tail() -> None:
    assert exception_class(TB) == "AttributeError"
    assert exception_class("gammapy.utils.SomeError: boom") == "SomeError"
    assert traceback_tail("warning line\n" + TB).startswith("Traceback")
    long_tb = "Traceback (most recent call last):\n" + "\n".join(f"  line {i}" for i in range(100)) + "\nValueError: x"
    assert len(traceback_tail(long_tb).splitlines()) == 30


def test_repair_message_has_exception_traceback_and_hint() -> None:
    ex = _ex(stderr=TB, code=1)
    from hpc_agent.records import Check, Validation

    attempt = Attempt(index=1, script="x", usage=Usage(), execution=ex, exception="AttributeError",
                      validation=Validation(passed=False, checks=(Check(name="exit_code", passed=False),)),
                      failure="runtime")
    msg = repair_message(attempt)
    assert "Exception: AttributeError" in msg
    assert "'Column' object has no attribute 'separation'" in msg
    assert "SkyCoord(table['RA_PNT'], table['DEC_PNT']" in msg  # the known-pitfall hint
    assert msg.endswith("Return the complete corrected script.")


def test_hints_and_system_prompt() -> None:
    assert hints_for("ModuleNotFoundError: No module named 'gammapy.io'")
    assert hints_for("all fine") == []
    assert "takes observation ids" in hints_for('  File "x", line 3, in get_observations\nTypeError: ...')[0]
    msgs = initial_messages("count things", "2.1", context="DataStore docs")
    assert "Gammapy 2.1" in msgs[0]["content"] and "TARGET_NAME" in msgs[0]["content"]
    assert [m["role"] for m in msgs] == ["system", "user", "user"]


def test_repair_message_names_a_repeated_script() -> None:
    from hpc_agent.records import Check, Validation

    attempt = Attempt(index=3, script="x", usage=Usage(), static_errors=("line 1: undefined name 'gammapy'",),
                      validation=Validation(passed=False, checks=(Check(name="static", passed=False),)),
                      failure="static")
    msg = repair_message(attempt, repeats=1)
    assert "identical to attempt 1" in msg and "undefined name 'gammapy'" in msg
    assert "identical" not in repair_message(attempt)


def test_static_repair_lists_errors_once_with_import_hint() -> None:
    from hpc_agent.records import Check, Validation

    errs = ("line 17: undefined name 'u' (missing import or typo)",)
    attempt = Attempt(index=1, script="x", usage=Usage(), static_errors=errs, failure="static",
                      validation=Validation(passed=False, checks=(Check(name="static", passed=False, message=errs[0]),)))
    msg = repair_message(attempt)
    assert msg.count("undefined name 'u'") == 1
    assert "import astropy.units as u" in msg


def test_conversation_drops_the_oldest_repair_turns_to_fit_the_window() -> None:
    from hpc_agent.conversation import Conversation, estimate_tokens
    from hpc_agent.records import Check, Validation

    conv = Conversation.start("count things", "2.1", "context")
    for i in range(1, 5):
        failed = Attempt(index=i, script=f"print({i})\n" + "x = 1\n" * 300, usage=Usage(), feedback=f"attempt {i} failed",
                         validation=Validation(passed=False, checks=(Check(name="static", passed=False),)),
                         failure="static")
        conv.add_repair_turn(failed, "raw")
    full = conv.snapshot()
    assert len(full) == 3 + 8
    trimmed = conv.snapshot(budget_tokens=estimate_tokens(full[:3]) + 1200)
    assert trimmed[:3] == full[:3]  # rules, context and request always stay
    assert trimmed[-1]["content"] == "attempt 4 failed" and len(trimmed) < len(full)
    assert estimate_tokens(trimmed) <= estimate_tokens(full[:3]) + 1200
    assert conv.snapshot(budget_tokens=1)[-2:] == full[-2:]  # the latest failure is never dropped


def test_a_flat_sky_distance_gets_the_separation_idiom() -> None:
    from hpc_agent.prompts import script_hints

    flat = "d = abs(table['RA_PNT'] - 83.6) + abs(table['DEC_PNT'] - 22.0)\n"
    assert "pointing.separation(source)" in script_hints(flat)[0]
    assert script_hints("p = SkyCoord(t['RA_PNT'], t['DEC_PNT'])\nm = p.separation(s)\n") == []


def test_the_system_messages_selection_idiom_runs_on_the_release(data_root, monkeypatch) -> None:
    """The code the rules show (open, select in a cone, read index columns and each event's values) is what
    small models copy: it must run as written, placeholders given values."""
    import re as _re

    from hpc_agent.prompts import system_message

    code = _re.search(r"```python\n(.*?)```", system_message("2.1"), _re.S).group(1)
    prelude = ("import os\nimport numpy as np\nimport astropy.units as u\nfrom astropy.coordinates import SkyCoord\n"
               "from gammapy.data import DataStore\nra_deg, dec_deg, radius_deg = 83.6331, 22.0145, 2.0\n")
    monkeypatch.setenv("PHOTON_STORAGE", str(data_root))
    namespace: dict = {}
    exec(prelude + "\n".join(line.strip() for line in code.splitlines()), namespace)
    assert len(namespace["selected"]) == 4 and len(namespace["energies"]) == 30129  # the Crab's runs and events


def test_a_time_compared_with_a_duration_is_told_the_time_since_the_start(data_root) -> None:
    """astropy's own errors for an instant compared with a duration get the Time hint first, and its idiom works on
    a real run of the release."""
    import astropy.units as u
    from gammapy.data import DataStore

    observation = DataStore.from_dir(data_root / "hess-dl3-dr1").obs(23592)
    time = observation.events.time
    for compare in (lambda: time >= 0 * u.min, lambda: 10 * u.s > time, lambda: time < 5):
        try:
            compare()
        except TypeError as error:
            message = f"TypeError: {error}"
        else:
            raise AssertionError("astropy compared a Time with a duration")
        assert hints_for(message)[0].startswith("An event's TIME"), message
    dt = observation.events.time - observation.tstart
    first = int(((dt >= 0 * u.min) & (dt < 10 * u.min)).sum())
    assert 0 < first < len(observation.events.table)
    assert hints_for("TypeError: '<' not supported between instances of 'Quantity' and 'float'")[0].startswith("Mind")
