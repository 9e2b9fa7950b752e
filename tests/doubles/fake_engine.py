"""A stand-in model-server *process* (test double) for lifecycle tests.

    python fake_engine.py PORT NAME MODE [PIDFILE]

MODE ok: serves /health and /v1/models (listing NAME) after a short delay; never-ready: /v1/models answers
503 forever; crash: exits with code 3 after printing an error. With PIDFILE it also starts a child process
(a grandchild of the test) and writes both pids there, so tests can check that stopping leaves no orphans.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
pidfile = sys.argv[4] if len(sys.argv) > 4 else None

if mode == "crash":
    print("fake-engine: fatal: no accelerator found", flush=True)
    sys.exit(3)

if pidfile:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    with open(pidfile, "w") as fh:
        json.dump({"engine": __import__("os").getpid(), "child": child.pid}, fh)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/health":
            status, body = 200, {}
        elif self.path == "/v1/models" and mode == "ok":
            status, body = 200, {"object": "list", "data": [{"id": name, "object": "model"}]}
        else:
            status, body = 503, {"error": "loading"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


time.sleep(0.5)  # a server is never ready at once
print(f"fake-engine listening on {port}", flush=True)
HTTPServer(("127.0.0.1", port), Handler).serve_forever()
