"""The chat client over real HTTP against the scripted test double: tool contract, fallbacks, retries."""

from __future__ import annotations

import json

import pytest

from doubles.openai_server import Reply, ScriptedOpenAIServer
from hpc_agent.config import Backend
from hpc_agent.errors import ConfigError, LLMUnavailableError
from hpc_agent.llm import ChatClient, extract_script

CODE = "import json\nprint('RESULT ' + json.dumps({'a': 1}))\n"
MSGS = [{"role": "system", "content": "rules"}, {"role": "user", "content": "go"}]


def _client(server: ScriptedOpenAIServer, **kw) -> ChatClient:  # type: ignore[no-untyped-def]
    backend = Backend(name="t", base_url=server.base_url, model=server.model, **kw)
    return ChatClient(backend, timeout_s=5, retries=3, backoff_s=0.01, max_backoff_s=0.05)


@pytest.mark.parametrize("mode", ["tool", "fence", "json-content"])
def test_each_answer_form_yields_the_script(mode: str) -> None:
    with ScriptedOpenAIServer([Reply(code=CODE, mode=mode, prompt_tokens=123, completion_tokens=45)]) as srv:
        ans = _client(srv).complete(MSGS)
    assert ans.script is not None and ans.script.strip() == CODE.strip()
    assert (ans.usage.prompt_tokens, ans.usage.completion_tokens, ans.usage.calls) == (123, 45, 1)
    assert ans.usage.latency_s > 0


def test_request_carries_tool_contract_and_sampling() -> None:
    with ScriptedOpenAIServer([Reply(code=CODE)]) as srv:
        _client(srv, max_tokens=77, temperature=0.1).complete(MSGS, seed=3)
        body = srv.requests[0]
    assert body["tools"][0]["function"]["name"] == "return_python"
    assert body["tool_choice"]["function"]["name"] == "return_python"
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (77, 0.1, 3)
    assert "reasoning_effort" not in body


def test_reasoning_effort_is_passed_and_temperature_dropped() -> None:
    with ScriptedOpenAIServer([Reply(code=CODE)]) as srv:
        _client(srv, reasoning_effort="high", max_tokens=1000).complete(MSGS)
        body = srv.requests[0]
    assert body["reasoning_effort"] == "high" and body["max_completion_tokens"] == 1000
    assert "temperature" not in body


def test_prose_without_code_is_a_model_result_not_an_error() -> None:
    with ScriptedOpenAIServer([Reply(text="I cannot help with that.", mode="text")]) as srv:
        ans = _client(srv).complete(MSGS)
    assert ans.script is None and ans.via == "none"


def test_retries_429_with_retry_after_and_5xx_then_succeeds() -> None:
    sleeps: list[float] = []
    replies = [Reply(status=429, headers={"Retry-After": "0.2"}), Reply(status=503), Reply(code=CODE)]
    with ScriptedOpenAIServer(replies) as srv:
        client = _client(srv)
        client._sleep = sleeps.append  # record instead of sleeping
        ans = client.complete(MSGS)
        assert len(srv.requests) == 3
    assert ans.script is not None
    assert sleeps[0] >= 0.2  # Retry-After honoured


def test_persistent_5xx_is_infrastructure_error() -> None:
    with ScriptedOpenAIServer([Reply(status=500)] * 10) as srv:
        with pytest.raises(LLMUnavailableError, match="failed 4 times"):
            _client(srv).complete(MSGS)
        assert len(srv.requests) == 4


def test_connection_refused_is_infrastructure_error() -> None:
    backend = Backend(name="down", base_url="http://127.0.0.1:9/v1", model="m")
    with pytest.raises(LLMUnavailableError):
        ChatClient(backend, timeout_s=2, retries=1, backoff_s=0.01).complete(MSGS)


def test_timeout_is_retried_then_infrastructure_error() -> None:
    with ScriptedOpenAIServer([Reply(code=CODE, delay_s=1.5)] * 3) as srv:
        backend = Backend(name="slow", base_url=srv.base_url, model=srv.model)
        with pytest.raises(LLMUnavailableError, match="APITimeoutError"):
            ChatClient(backend, timeout_s=0.3, retries=1, backoff_s=0.01).complete(MSGS)


def test_a_single_slot_llamacpp_server_gets_the_whole_budget_in_one_request() -> None:
    """A retry would queue behind the request the server is still finishing: one request, retries' time."""
    with ScriptedOpenAIServer([Reply(code=CODE, delay_s=0.8)] * 3) as srv:
        backend = Backend(name="local", base_url=srv.base_url, model=srv.model, engine="llama.cpp")
        answer = ChatClient(backend, timeout_s=0.3, retries=3, backoff_s=0.01).complete(MSGS)
        assert answer.script is not None and len(srv.requests) == 1
    with ScriptedOpenAIServer([Reply(code=CODE, delay_s=1.5)] * 3) as srv:
        backend = Backend(name="local", base_url=srv.base_url, model=srv.model, engine="llama.cpp")
        with pytest.raises(LLMUnavailableError, match="no answer in 0.6"):
            ChatClient(backend, timeout_s=0.3, retries=1, backoff_s=0.01).complete(MSGS)
        assert len(srv.requests) == 1


def test_404_is_a_config_error_naming_the_backend() -> None:
    with ScriptedOpenAIServer([Reply(status=404, text="model does not exist")]) as srv:
        with pytest.raises(ConfigError, match="backend 't'.*HTTP 404"):
            _client(srv).complete(MSGS)


def test_server_that_rejects_tools_falls_back_to_fences() -> None:
    replies = [Reply(status=400, text="tools are not supported"), Reply(code=CODE, mode="fence")]
    with ScriptedOpenAIServer(replies) as srv:
        ans = _client(srv).complete(MSGS)
        assert "tools" in srv.requests[0] and "tools" not in srv.requests[1]
    assert ans.script is not None and ans.via == "fence"


def test_server_info_reports_models() -> None:
    with ScriptedOpenAIServer() as srv:
        client = _client(srv)
        info = client.server_info()
    assert info.models[0]["id"] == "scripted-model"
    # asked once per client (a sweep's cells share their model's client): the server is gone, the answer stays
    assert client.server_info() == info


def test_extract_script_variants() -> None:
    assert extract_script(["{bad json"], "```python\nimport os\n```")[1] == "fence"
    assert extract_script([json.dumps({"code": CODE})], None) == (CODE, "tool")
    as_text = json.dumps({"name": "return_python", "arguments": json.dumps({"code": CODE})})
    assert extract_script([], as_text) == (CODE, "json-content")
    assert extract_script([], "import os\nprint(1)")[1] == "plain"
    assert extract_script([], "```python\nimport os\nprint(1)")[0] == "import os\nprint(1)"  # truncated
