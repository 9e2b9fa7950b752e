"""The chat client: the `return_python` tool contract, fallbacks, retries and usage accounting.

Server trouble (429, 5xx, timeouts, refused connections) is retried with backoff and, when it persists,
raised as `LLMUnavailableError` — an infrastructure failure, never a model failure. A model that answers
without usable code is a *result* (`ModelAnswer.script is None`).
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import openai

from hpc_agent.config import Backend
from hpc_agent.errors import ConfigError, ContextOverflowError, LLMUnavailableError
from hpc_agent.records import ServerInfo, Usage
from hpc_agent.serve.engines import engine_version
from hpc_agent.serve.lifecycle import http_json

# How vLLM, llama.cpp and OpenAI word a request longer than the context window (HTTP 400).
CONTEXT_OVERFLOW = re.compile(r"maximum context length|context length|context_length_exceeded|exceeds? the "
                              r"(?:available )?context|n_ctx|too many tokens", re.IGNORECASE)
log = logging.getLogger(__name__)

RETURN_PYTHON_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "return_python",
        "description": "Return the complete Python script.",
        "parameters": {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "the complete Python script"}},
            "required": ["code"],
        },
    },
}
TOOL_CHOICE = {"type": "function", "function": {"name": "return_python"}}

_FENCE = re.compile(r"```(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class ModelAnswer:
    script: str | None  # None: the model gave nothing we could run
    raw: str  # the raw answer (content or tool arguments), kept for the bundle
    usage: Usage
    finish_reason: str | None
    via: str  # "tool" | "json-content" | "fence" | "plain" | "none"; "kept": built by the harness (focus.py)


def extract_script(tool_args: list[str], content: str | None) -> tuple[str | None, str]:
    """The script from tool-call arguments, a JSON tool call written as text, or a fenced block."""
    for args in tool_args:
        try:
            code = json.loads(args, strict=False).get("code")  # small models put raw newlines in strings
        except (json.JSONDecodeError, AttributeError):
            code = None
        if isinstance(code, str) and code.strip():
            return code, "tool"
    text = (content or "").strip()
    if not text:
        return None, "none"
    # Small models write the tool call as JSON text instead of using tool_calls.
    candidate = _FENCE.search(text)
    for blob in (text, candidate.group(1) if candidate else None):
        if blob and blob.lstrip().startswith("{"):
            try:
                obj = json.loads(blob, strict=False)
            except json.JSONDecodeError:
                continue
            payload = obj.get("arguments", obj) if isinstance(obj, dict) else None
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except json.JSONDecodeError:
                    payload = None
            if isinstance(payload, dict) and isinstance(payload.get("code"), str):
                return payload["code"], "json-content"
    if candidate and candidate.group(1).strip():
        return candidate.group(1), "fence"
    if re.search(r"^\s*(import|from)\s+\w+", text, re.MULTILINE):
        return text, "plain"
    return None, "none"


def _usage(resp: Any, latency: float) -> Usage:
    u = getattr(resp, "usage", None)
    if u is None:
        return Usage(calls=1, latency_s=latency)
    pd = getattr(u, "prompt_tokens_details", None)
    cd = getattr(u, "completion_tokens_details", None)
    return Usage(
        prompt_tokens=u.prompt_tokens or 0,
        cached_prompt_tokens=(getattr(pd, "cached_tokens", None) or 0) if pd else 0,
        completion_tokens=u.completion_tokens or 0,
        reasoning_tokens=(getattr(cd, "reasoning_tokens", None) or 0) if cd else 0,
        calls=1,
        latency_s=latency,
    )


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ChatModel(Protocol):
    """What the agent needs from a model: a backend description, answers, and the server's identity."""

    backend: Backend

    def complete(self, messages: list[dict[str, str]], *, seed: int | None = None,
                 temperature: float | None = None) -> ModelAnswer: ...

    def server_info(self) -> ServerInfo: ...


class ChatClient:
    """One backend, one OpenAI SDK client; `complete(messages)` returns a `ModelAnswer`."""

    def __init__(
        self,
        backend: Backend,
        *,
        timeout_s: float = 600.0,
        retries: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._sleep = sleep
        self._use_tools = backend.use_tools
        # llama.cpp's Python server answers one request at a time and finishes a request whose client gave up:
        # a retry after a timeout would only queue behind it (seen on loaded CPUs: every retry timed out too).
        # So one request gets the whole budget, and only other failures are retried.
        self._retry_timeouts = backend.engine != "llama.cpp"
        if not self._retry_timeouts:
            timeout_s *= retries + 1
        # The SDK's own retries are off: ours classify failures and honour Retry-After.
        self._server_info: ServerInfo | None = None
        self._client = openai.OpenAI(
            base_url=backend.base_url, api_key=backend.api_key(), timeout=timeout_s, max_retries=0
        )

    def _request(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        b = self.backend
        req: dict[str, Any] = {"model": b.model, "messages": messages}
        if self._use_tools:
            req["tools"] = [RETURN_PYTHON_TOOL]
            req["tool_choice"] = TOOL_CHOICE
        if b.reasoning_effort:
            # Reasoning models take max_completion_tokens and reject a custom temperature.
            req["reasoning_effort"] = b.reasoning_effort
            if b.max_tokens:
                req["max_completion_tokens"] = b.max_tokens
        else:
            if b.max_tokens:
                req["max_tokens"] = b.max_tokens
            if b.temperature is not None:
                req["temperature"] = b.temperature
        return req

    def complete(self, messages: list[dict[str, str]], *, seed: int | None = None,
                 temperature: float | None = None) -> ModelAnswer:
        """One answer; `temperature` replaces the backend's for this call (ignored by reasoning models)."""
        wasted = Usage()
        for attempt in range(self.retries + 1):
            req = self._request(messages)
            if seed is not None:
                req["seed"] = seed
            if temperature is not None and "temperature" in req:
                req["temperature"] = temperature
            t0 = time.monotonic()
            try:
                resp = self._client.chat.completions.create(**req)
            except openai.BadRequestError as exc:
                if self._use_tools and "tool" in str(exc).lower():
                    log.warning("%s rejected tools (%s); falling back to fenced code", self.backend.name, exc)
                    self._use_tools = False
                    continue
                if CONTEXT_OVERFLOW.search(str(exc)):
                    raise ContextOverflowError(f"backend {self.backend.name!r}: the conversation exceeds the model's "
                                               f"context window (HTTP 400: {exc.message})") from exc
                raise ConfigError(f"backend {self.backend.name!r}: request rejected (HTTP 400): {exc.message}") from exc
            except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
                raise ConfigError(
                    f"backend {self.backend.name!r} at {self.backend.base_url}: HTTP {exc.status_code} "
                    f"({exc.message}); check the model name and the API key variable {self.backend.api_key_env}"
                ) from exc
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                if isinstance(exc, openai.APIStatusError) and status is not None and status < 500 and status != 429:
                    raise LLMUnavailableError(f"backend {self.backend.name!r}: HTTP {status}: {exc.message}") from exc
                if isinstance(exc, openai.APITimeoutError) and not self._retry_timeouts:
                    raise LLMUnavailableError(
                        f"backend {self.backend.name!r} at {self.backend.base_url} gave no answer in "
                        f"{self._client.timeout} s (the `llm_timeout_s` budget of all its retries)") from exc
                if attempt >= self.retries:
                    raise LLMUnavailableError(
                        f"backend {self.backend.name!r} at {self.backend.base_url} failed "
                        f"{self.retries + 1} times; last: {exc.__class__.__name__}: {exc}"
                    ) from exc
                delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                if isinstance(exc, openai.APIStatusError):
                    delay = max(delay, _retry_after(exc) or 0.0)
                log.warning("%s: %s; retry %d/%d in %.1fs", self.backend.name, exc.__class__.__name__,
                            attempt + 1, self.retries, delay)
                self._sleep(delay)
                continue
            latency = time.monotonic() - t0
            usage = _usage(resp, latency) + wasted
            if not getattr(resp, "choices", None):
                # A 200 without choices is a broken server, not a model answer.
                wasted = usage
                if attempt >= self.retries:
                    raise LLMUnavailableError(f"backend {self.backend.name!r}: answers without choices")
                continue
            choice = resp.choices[0]
            msg = choice.message
            tool_args = [tc.function.arguments or "" for tc in (msg.tool_calls or [])
                         if getattr(tc, "function", None) is not None]
            script, via = extract_script(tool_args, msg.content)
            raw = "\n".join(tool_args) if tool_args else (msg.content or "")
            return ModelAnswer(script=script, raw=raw, usage=usage, finish_reason=choice.finish_reason, via=via)
        raise LLMUnavailableError(f"backend {self.backend.name!r}: no usable answer")  # pragma: no cover

    def server_info(self) -> ServerInfo:
        """Which server answers: the `/v1/models` payload (empty when the endpoint does not exist). Asked once
        per client: a sweep's cells share their model's client."""
        if self._server_info is None:
            self._server_info = self._ask_server_info()
        return self._server_info

    def _ask_server_info(self) -> ServerInfo:
        try:
            models = [m.model_dump() for m in self._client.models.list().data]
        except openai.OpenAIError as exc:
            log.info("%s: /models unavailable: %s", self.backend.name, exc)
            models = []
        engine = self.backend.engine
        engine_ver = engine_version(engine) if engine else None
        if engine_ver is None:
            # vLLM answers GET /version at the server root; other servers 404, which tells us nothing.
            status, payload = http_json(self.backend.base_url.rsplit("/v1", 1)[0] + "/version", 5.0)
            if status == 200 and isinstance(payload, dict) and "version" in payload:
                engine, engine_ver = engine or "vllm", str(payload["version"])
        return ServerInfo(base_url=self.backend.base_url, models=models, engine=engine, engine_version=engine_ver)
