"""The conversation of one run: system rules, first-turn context, the request, then repair turns.

The assistant side of a repair turn shows the script as it ran (after the harness's repairs), so the
line numbers in the feedback match what the model reads and the fixes are in front of it. When the
model's context window is known, the oldest repair turns are left out of what is sent so that the rules,
the context, the request and the latest failure always fit with room for the answer.

A small model that sees its own failed script tends to send it back unchanged. `restart` clears the repair
turns and asks afresh, the request carrying one line per lesson learnt so far (what failed, and the fix),
but no failed script to copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpc_agent import prompts
from hpc_agent.records import Attempt

Message = dict[str, str]


CHARS_PER_TOKEN = 3.0  # conservative for code (tokenizers average 3-4 characters per token on Python)


def estimate_tokens(messages: list[Message]) -> int:
    return int(sum(len(m["content"]) + 16 for m in messages) / CHARS_PER_TOKEN)


@dataclass
class Conversation:
    messages: list[Message] = field(default_factory=list)
    first: list[Message] = field(default_factory=list)  # rules, context, request: what a restart goes back to

    @classmethod
    def start(cls, prompt: str, gammapy_version: str, context: str | None,
              data_layout: str | None = None) -> Conversation:
        first = prompts.initial_messages(prompt, gammapy_version, context, data_layout)
        return cls(list(first), list(first))

    def restart(self, lessons: list[str], reference: str = "") -> None:
        """The first turn again, its request followed by the lessons (and newly retrieved material)."""
        *head, request = self.first
        text = request["content"].removesuffix(prompts.ASK).rstrip() + "\n\n" + prompts.lessons_text(lessons)
        if reference:
            text += f"\n\n{prompts.REFERENCE_HEADER}\n\n{reference}"
        self.messages = [*head, {"role": "user", "content": f"{text}\n\n{prompts.ASK}"}]

    def snapshot(self, budget_tokens: int | None = None) -> list[Message]:
        """What is sent for the next answer (a copy: later turns do not change a recorded request).

        With a budget, the oldest (assistant, feedback) pairs after the request are dropped until the estimate
        fits; the latest pair always stays."""
        sent = list(self.messages)
        if budget_tokens is None:
            return sent
        start = next((i for i, m in enumerate(sent) if m["role"] == "assistant"), len(sent))
        while estimate_tokens(sent) > budget_tokens and len(sent) - start > 2:
            del sent[start:start + 2]
        return sent

    def add_repair_turn(self, attempt: Attempt, raw_answer: str, reference: str = "") -> None:
        """The failed answer, then the feedback (and any newly retrieved reference material)."""
        content = (attempt.feedback or "") + (f"\n\n{prompts.REFERENCE_HEADER}\n\n{reference}" if reference else "")
        self.messages += [prompts.assistant_turn(attempt.script, raw_answer), {"role": "user", "content": content}]
