"""Replay the turn after ATTEMPT_DIR: its sent messages, its raw answer, its stored feedback."""
import json, sys, urllib.request
from pathlib import Path
att, port = Path(sys.argv[1]), sys.argv[2]
lines = [json.loads(l) for l in (att / "messages.jsonl").read_text().splitlines() if l.strip()]
msgs = [m for m in lines if isinstance(m, dict) and "content" in m]
raw = [m for m in lines if isinstance(m, dict) and "raw" in m]
print("extra lines:", [type(x).__name__ + ":" + str(x)[:80] for x in raw], file=sys.stderr)
answer = raw[-1].get("raw") if raw and isinstance(raw[-1], dict) else (att / "answer.py").read_text()
feedback = json.loads((att / "validation.json").read_text())["feedback"]
msgs += [{"role": "assistant", "content": answer}, {"role": "user", "content": feedback}]
body = {"model": "qwen2.5-coder-1.5b", "messages": msgs, "temperature": 0.2, "max_tokens": 1024, "seed": 0}
req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
out = json.load(urllib.request.urlopen(req, timeout=3000))
print(out["choices"][0]["message"]["content"])
print(out.get("usage"), file=sys.stderr)
