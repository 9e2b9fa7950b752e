#!/usr/bin/env python3
"""A stand-in `vllm` executable (test double): accepts `vllm serve MODEL --served-model-name N --port P ...`,
records its argv and environment next to itself, then behaves like fake_engine.py in mode "ok"."""

import json
import os
import sys
from pathlib import Path

args = sys.argv[1:]
assert args[0] == "serve", args
opts = {args[i]: args[i + 1] for i in range(2, len(args) - 1) if args[i].startswith("--")}
record = Path(os.environ.get("FAKE_VLLM_RECORD", Path(__file__).with_suffix(".argv.json")))
record.write_text(json.dumps({"argv": sys.argv, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE")}))
engine = Path(__file__).with_name("fake_engine.py")
os.execv(sys.executable, [sys.executable, str(engine), opts["--port"], opts["--served-model-name"], "ok"])
