"""An OpenAI-compatible `/v1/embeddings` server: a named test double that embeds with the real local model.

It stands in for vLLM's or Blablador's embedding endpoint over real HTTP, and records every request body,
so tests exercise `OpenAIEmbedder` end to end with meaningful vectors (all-MiniLM-L6-v2, offline).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hpc_agent.rag import LocalEmbedder


class EmbeddingsServer:
    def __init__(self, model: str = "minilm") -> None:
        self.model = model
        self.requests: list[dict[str, Any]] = []
        embedder = LocalEmbedder()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                if not self.path.rstrip("/").endswith("/embeddings") or body.get("model") != server.model:
                    self._send(404, {"error": {"message": f"no model {body.get('model')!r} at {self.path}"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                # vectors scaled by 3: the client must normalise them itself
                vectors = [[3 * x for x in v] for v in embedder.embed(texts)]
                self._send(200, {"object": "list", "model": server.model,
                                 "data": [{"object": "embedding", "index": i, "embedding": v}
                                          for i, v in reversed(list(enumerate(vectors)))],
                                 "usage": {"prompt_tokens": 0, "total_tokens": 0}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "EmbeddingsServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
