"""The on-disk layout of a run (the forensic bundle).

    OUT/run.json                      the RunResult (passed, attempts, final_script, usage, versions, ...)
    OUT/attempt-<n>/prompt.txt        the conversation sent for this attempt, readable
    OUT/attempt-<n>/messages.jsonl    the same messages, one JSON object per line, then the raw answer
    OUT/attempt-<n>/script.py         the script that was checked and run (the answer after repairs)
    OUT/attempt-<n>/answer.py         the model's own script, when the harness's repairs changed it
    OUT/attempt-<n>/stdout.txt, stderr.txt   sandbox output (capped head + tail)
    OUT/attempt-<n>/validation.json   static errors, execution facts, checks, failure class
    OUT/attempt-<n>/usage.json        tokens and latency of the model call(s)
    OUT/attempt-<n>/workspace/        the sandbox's writable folder (files the script wrote)
    OUT/attempt-<n>/context.json      with RAG: the retrieval query and the snippets injected for this attempt
                                      (chunk id, score, symbol, source, kind)
    OUT/attempt-<n>/candidate-<j>/    with several candidates per turn: each one's raw.txt, answer.py, script.py,
                                      stdout/stderr, validation.json, usage.json and workspace/
                                      (attempt-<n>/ itself holds the chosen one, with every candidate's usage);
                                      the last candidate may be the best earlier script with this answer's fix
                                      in its failing lines (raw.txt is then the model's answer it came from)

Every file is written atomically; known secret values are masked before anything reaches disk.
`run.json` and `validation.json` are written from their records (`RunFile`, `ValidationFile`, with a `schema`
version); `read_run` reads a bundle back into the `RunResult` it was written from (files of earlier versions
too). `load_attempts` and `list_runs` read the raw files, for listings and runs still being written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from hpc_agent._files import atomic_write_text
from hpc_agent.records import BUNDLE_VERSION, Attempt, RecordError, RunFile, RunResult, Usage, ValidationFile

__all__ = ["BUNDLE_VERSION", "AttemptFiles", "Bundle", "list_runs", "load_attempts", "read_attempt", "read_run",
           "render_messages"]

MASK = "***"


class Bundle:
    def __init__(self, out_dir: Path, secrets: Iterable[str] = ()) -> None:
        self.out_dir = out_dir
        self._secrets = [s for s in secrets if s and len(s) >= 6]
        out_dir.mkdir(parents=True, exist_ok=True)

    def attempt_dir(self, index: int) -> Path:
        return self.out_dir / f"attempt-{index}"

    def candidate_dir(self, index: int, candidate: int) -> Path:
        return self.attempt_dir(index) / f"candidate-{candidate}"

    def workspace(self, index: int, candidate: int | None = None, *, create: bool = True) -> Path:
        base = self.attempt_dir(index) if candidate is None else self.candidate_dir(index, candidate)
        ws = base / "workspace"
        if create:
            ws.mkdir(parents=True, exist_ok=True)
        return ws

    def _mask(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, MASK)
        return text

    def _write(self, path: Path, text: str) -> None:
        atomic_write_text(path, self._mask(text))

    def _write_json(self, path: Path, obj: Any) -> None:
        self._write(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")

    def _write_outcome(self, d: Path, attempt: Attempt) -> None:
        """script.py, answer.py, stdout/stderr, validation.json and usage.json of one evaluated answer."""
        if attempt.script is not None:
            self._write(d / "script.py", attempt.script)
        if attempt.answer is not None:
            self._write(d / "answer.py", attempt.answer)
        ex = attempt.execution
        self._write(d / "stdout.txt", ex.stdout if ex else "")
        self._write(d / "stderr.txt", ex.stderr if ex else "")
        self._write_json(d / "validation.json", ValidationFile.from_attempt(attempt).to_json())
        self._write_json(d / "usage.json", attempt.usage.model_dump())

    def write_attempt(self, attempt: Attempt, sent: list[dict[str, str]], raw_answer: str) -> Path:
        d = self.attempt_dir(attempt.index)
        self._write(d / "prompt.txt", render_messages(sent))
        lines = [json.dumps(m, ensure_ascii=False) for m in sent]
        lines.append(json.dumps({"role": "assistant", "raw": raw_answer}, ensure_ascii=False))
        self._write(d / "messages.jsonl", "\n".join(lines) + "\n")
        self._write_outcome(d, attempt)
        return d

    def write_candidate(self, attempt: Attempt, raw_answer: str) -> Path:
        """One of several candidates of a turn, in attempt-<n>/candidate-<j>/ (its raw answer too)."""
        d = self.candidate_dir(attempt.index, attempt.candidate)
        self._write(d / "raw.txt", raw_answer)
        self._write_outcome(d, attempt)
        return d

    def write_context(self, index: int, record: dict[str, Any]) -> Path:
        path = self.attempt_dir(index) / "context.json"
        self._write_json(path, record)
        return path

    def write_error(self, text: str) -> Path:
        """The traceback of an error that stopped the run (`run.json` carries its one-line form)."""
        path = self.out_dir / "error.txt"
        self._write(path, text)
        return path

    def write_run(self, result: RunResult) -> Path:
        path = self.out_dir / "run.json"
        self._write_json(path, RunFile.from_result(result).to_json())
        return path


def render_messages(messages: list[dict[str, str]]) -> str:
    return "\n\n".join(f"### {m['role']}\n{m['content']}" for m in messages) + "\n"


def read_attempt(d: Path, index: int) -> Attempt:
    """The attempt whose folder is `d`, read back from validation.json, usage.json and the script and output
    files (a candidate folder reads the same way)."""
    if not (d / "validation.json").is_file():
        raise RecordError(f"{d}: no validation.json; not a finished attempt")
    script, answer = d / "script.py", d / "answer.py"
    return ValidationFile.read(d / "validation.json").to_attempt(
        index, script=script.read_text(errors="replace") if script.is_file() else None,
        answer=answer.read_text(errors="replace") if answer.is_file() else None,
        usage=Usage.model_validate(_json(d / "usage.json")), stdout=_text(d / "stdout.txt"),
        stderr=_text(d / "stderr.txt"))


def read_run(out_dir: Path) -> RunResult:
    """The RunResult a bundle was written from: run.json plus each attempt folder it lists."""
    run = RunFile.read(out_dir / "run.json")
    return run.to_result(tuple(read_attempt(out_dir / f"attempt-{s.index}", s.index) for s in run.attempt_summaries))


@dataclass(frozen=True)
class AttemptFiles:
    """One attempt folder read back: what was sent, the script, its output, validation and usage."""

    index: int
    prompt: str
    script: str | None
    stdout: str
    stderr: str
    validation: dict[str, Any]
    usage: dict[str, Any]


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def load_attempts(out_dir: Path) -> list[AttemptFiles]:
    """Every `attempt-<n>/` folder of a bundle, in order (missing files read as empty)."""
    found = []
    for d in out_dir.glob("attempt-*"):
        suffix = d.name.removeprefix("attempt-")
        if d.is_dir() and suffix.isdigit():
            script = d / "script.py"
            found.append(AttemptFiles(
                index=int(suffix), prompt=_text(d / "prompt.txt"),
                script=script.read_text(errors="replace") if script.is_file() else None,
                stdout=_text(d / "stdout.txt"), stderr=_text(d / "stderr.txt"),
                validation=_json(d / "validation.json"), usage=_json(d / "usage.json")))
    return sorted(found, key=lambda a: a.index)


def list_runs(runs_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Finished bundles directly under `runs_dir` (those with a readable run.json), newest first."""
    runs = []
    for path in runs_dir.glob("*/run.json") if runs_dir.is_dir() else ():
        try:
            runs.append((path.parent, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue  # being written or damaged: not a finished run
    return sorted(runs, key=lambda r: str(r[1].get("started_at", "")), reverse=True)
