"""The conversation of one run: system rules, first-turn context, the request, then repair turns.

The assistant side of a repair turn shows the script as it ran (after the harness's repairs), so the
line numbers in the feedback match what the model reads and the fixes are in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpc_agent import prompts
from hpc_agent.records import Attempt

Message = dict[str, str]


@dataclass
class Conversation:
    messages: list[Message] = field(default_factory=list)

    @classmethod
    def start(cls, prompt: str, gammapy_version: str, context: str | None,
              data_layout: str | None = None) -> Conversation:
        return cls(prompts.initial_messages(prompt, gammapy_version, context, data_layout))

    def snapshot(self) -> list[Message]:
        """What is sent for the next answer (a copy: later turns do not change a recorded request)."""
        return list(self.messages)

    def add_repair_turn(self, attempt: Attempt, raw_answer: str, reference: str = "") -> None:
        """The failed answer, then the feedback (and any newly retrieved reference material)."""
        content = (attempt.feedback or "") + (f"\n\n{prompts.REFERENCE_HEADER}\n\n{reference}" if reference else "")
        self.messages += [prompts.assistant_turn(attempt.script, raw_answer), {"role": "user", "content": content}]
