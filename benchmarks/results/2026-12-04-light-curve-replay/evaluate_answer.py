"""The replayed answer through the agent's own evaluate (static stage, sandbox, validation against the task):
    PHOTON_STORAGE=DATA python evaluate_answer.py answer.txt"""
import sys
from pathlib import Path
from hpc_agent.agent import evaluate
from hpc_agent.assemble import run_spec
from hpc_agent.bench.references import expected_values
from hpc_agent.bench.tasks import load_tasks
from hpc_agent.config import load_settings
from hpc_agent.llm import ModelAnswer
from hpc_agent.records import Usage
from hpc_agent.sandbox import from_settings
from hpc_agent.validate import default_validators

settings = load_settings()
task = load_tasks()["light-curve-crab"]
data_root = Path("/work/shared/data")
box = from_settings(settings)
ref = expected_values(task, data_root, box)
validators = [*default_validators(True), *task.validators(ref.values)]
spec = run_spec(settings, prompt=task.prompt, data_root=data_root, out_dir=Path("/tmp/replay-eval"),
                wall_s=task.time_limit_s, validators=validators)
ws = Path("/tmp/replay-eval/ws"); ws.mkdir(parents=True, exist_ok=True)
answer = ModelAnswer(script=Path(sys.argv[1]).read_text(), raw="", usage=Usage(), finish_reason="stop", via="text")
a = evaluate(1, answer, spec, box, ws)
print("passed", a.passed, "failure", a.failure, "exception", a.exception)
print("repairs", [r[:120] for r in a.repairs])
print("static", a.static_errors)
if a.execution: print(a.execution.stdout[-600:]); print(a.execution.stderr[-1500:])
print([ (c.name, c.passed, c.message[:200]) for c in a.validation.checks])
print("expected", ref.values)
