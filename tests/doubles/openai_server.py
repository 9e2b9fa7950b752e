"""A scripted OpenAI-compatible HTTP server: a named test double.

It answers `/v1/chat/completions` from a queue of scripted replies (a script via the `return_python`
tool, a fenced block, plain text, or an HTTP fault) and records every request body, so tests can make a
repair loop deterministic over real HTTP and assert what the agent sent.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. `code` goes out as a tool call (mode="tool") or in the content."""

    code: str | None = None
    mode: str = "tool"  # "tool" | "fence" | "json-content" | "text"
    text: str = ""
    status: int = 200  # non-200: an HTTP fault with `text` as the error message
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 50


class ScriptedOpenAIServer:
    def __init__(self, replies: list[Reply] | None = None, model: str = "scripted-model") -> None:
        self.model = model
        self.replies: list[Reply] = list(replies or [])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [
                        {"id": server.model, "object": "model", "owned_by": "test-double"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.requests.append(body)
                    reply = server.replies.pop(0) if server.replies else Reply(text="(no more scripted replies)", mode="text")
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.text or "scripted fault"}}, reply.headers)
                    return
                self._send(200, server._completion(reply))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _completion(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None}
        finish = "stop"
        if reply.mode == "tool" and reply.code is not None:
            message["tool_calls"] = [{"id": f"call_{len(self.requests)}", "type": "function",
                                      "function": {"name": "return_python",
                                                   "arguments": json.dumps({"code": reply.code})}}]
            finish = "tool_calls"
        elif reply.mode == "fence" and reply.code is not None:
            message["content"] = f"Here is the script:\n```python\n{reply.code}\n```\n"
        elif reply.mode == "json-content" and reply.code is not None:
            message["content"] = json.dumps({"name": "return_python", "arguments": {"code": reply.code}})
        else:
            message["content"] = reply.text
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                      "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0}},
        }

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ScriptedOpenAIServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
