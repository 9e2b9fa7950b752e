"""A scripted OpenAI-compatible HTTP server: a named test double.

It answers `/v1/chat/completions` from a queue of scripted replies (a script via the `return_python`
tool, a fenced block, plain text, or an HTTP fault) and records every request body, so tests can make a
repair loop deterministic over real HTTP and assert what the agent sent.
"""

from __future__ import annotations

import json
import socket
import struct
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
    # a transport fault instead of an answer: "reset" (connection dropped mid-body), "trickle" (the body
    # dribbles out slower than any read timeout), "empty-choices" (a 200 without choices), "bad-tool-args"
    # (a tool call whose arguments are not JSON), "restart" (the server goes away for `delay_s`, refusing
    # connections, then listens again on the same port)
    fault: str | None = None
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

            def _fault(self, reply: Reply) -> None:
                if reply.fault == "empty-choices":
                    self._send(200, {**server._completion(reply), "choices": []})
                elif reply.fault == "bad-tool-args":
                    body = server._completion(Reply(code="x"))
                    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"code": "import js'
                    self._send(200, body)
                elif reply.fault in ("reset", "trickle"):
                    data = json.dumps(server._completion(Reply(code="print('never complete')"))).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if reply.fault == "reset":
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                        linger = struct.pack("ii", 1, 0)  # close with RST, not FIN: a connection reset
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                        self.connection.close()
                        return
                    try:
                        for byte in data:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.delay_s or 1.0)
                    except OSError:  # the client gave up, as it should
                        pass
                elif reply.fault == "restart":
                    threading.Thread(target=server.restart, args=(reply.delay_s or 2.0,), daemon=True).start()
                    self.close_connection = True
                else:
                    raise ValueError(f"unknown fault {reply.fault!r}")

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
                if reply.fault is not None:
                    self._fault(reply)
                    return
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.status != 200:
                    self._send(reply.status, {"error": {"message": reply.text or "scripted fault"}}, reply.headers)
                    return
                self._send(200, server._completion(reply))

        self._handler = Handler
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.restarts = 0

    def restart(self, down_s: float) -> None:
        """Stop listening (connections are refused) for `down_s`, then listen on the same port again."""
        port = self.httpd.server_address[1]
        self.httpd.shutdown()
        self.httpd.server_close()
        time.sleep(down_s)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self.restarts += 1

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
