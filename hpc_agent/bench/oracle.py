"""The oracle model: answers every task with its reference solution.

A gold run with it must pass every task; it proves that tasks, sandbox and validators agree.
"""

from __future__ import annotations

from hpc_agent.bench.tasks import Task, reference_script
from hpc_agent.config import Backend
from hpc_agent.llm import ModelAnswer
from hpc_agent.records import ServerInfo, Usage

ORACLE = "oracle"


class OracleModel:
    backend = Backend(name=ORACLE, base_url="http://oracle.invalid/v1", model=ORACLE, temperature=None)

    def __init__(self, task: Task) -> None:
        self._script = reference_script(task)

    def complete(self, messages: list[dict[str, str]], *, seed: int | None = None,
                 temperature: float | None = None) -> ModelAnswer:
        return ModelAnswer(script=self._script, raw=self._script, usage=Usage(calls=1), finish_reason="stop",
                           via="oracle")

    def server_info(self) -> ServerInfo:
        return ServerInfo(base_url=self.backend.base_url, models=[{"id": ORACLE}], engine=ORACLE)
