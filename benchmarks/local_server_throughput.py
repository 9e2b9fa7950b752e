"""Local model serving figures: HTTP server vs llama-cpp-python in-process, on the same GGUF.

Prints prompt and generation tokens/s for both paths (median of N runs, streaming, greedy), their ratio
(target >= 0.9), the server's time to ready and memory (peak RSS), and the in-process peak RSS.

    .venv/bin/python benchmarks/local_server_throughput.py [--model qwen2.5-coder-0.5b] [--runs 3]

Each run uses a different prompt prefix so that no path profits from a cached prompt.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import openai

from hpc_agent.serve import get_model_config
from hpc_agent.serve.engines import managed_server
from hpc_agent.serve.lifecycle import free_port
from hpc_agent.serve.weights import ensure_gguf

PROMPT = (
    "You write Gammapy analysis scripts. Write a complete Python script that opens the H.E.S.S. DL3 DR1 "
    "data store from the folder in the PHOTON_STORAGE environment variable, selects observations within "
    "two degrees of the Crab nebula by pointing position, and prints the number of observations and their "
    "total livetime in hours as a JSON line prefixed with RESULT. " * 8
)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _rates(n_prompt: int, start_stream: Callable[[], Iterable[object]]) -> tuple[float, float]:
    """(prompt tok/s, generation tok/s) of one streamed completion: time to first chunk, then chunk rate."""
    t0 = time.perf_counter()
    first = None
    n = 0
    for _chunk in start_stream():
        if first is None:
            first = time.perf_counter()
        n += 1
    end = time.perf_counter()
    assert first is not None, "empty stream"
    return n_prompt / (first - t0), (n - 1) / (end - first)


def measure_in_process(gguf: Path, runs: int, max_tokens: int, threads: int, ctx: int) -> dict[str, float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=ctx, n_threads=threads, verbose=False)
    llm.create_completion("warm-up", max_tokens=8)  # page in the weights, as the server's first request does
    prompt_tps, gen_tps = [], []
    for i in range(runs):
        prompt = f"Request {i * 7919}. {PROMPT}"
        p, g = _rates(len(llm.tokenize(prompt.encode())), lambda: llm.create_completion(
            prompt, max_tokens=max_tokens, temperature=0.0, stream=True))
        prompt_tps.append(p)
        gen_tps.append(g)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"prompt_tps": _median(prompt_tps), "gen_tps": _median(gen_tps), "peak_rss_mb": peak_mb}


def _tree_peak_rss_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of the server process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_http(model: str, runs: int, max_tokens: int) -> dict[str, float]:
    cfg = get_model_config(model)
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "server.log"
    t_start = time.perf_counter()
    with managed_server(cfg, host="127.0.0.1", port=port, log_file=log, ready_timeout_s=300) as srv:
        ready_s = time.perf_counter() - t_start
        client = openai.OpenAI(base_url=srv.base_url, api_key="none", max_retries=0, timeout=600)
        prompt_tps, gen_tps = [], []
        from llama_cpp import Llama  # tokenizer only, to count prompt tokens exactly as the server does

        tok = Llama(model_path=str(ensure_gguf(cfg)), vocab_only=True, verbose=False)
        client.completions.create(model=cfg.served_model_name, prompt="warm-up", max_tokens=8)
        for i in range(runs):
            prompt = f"Request {i * 104729}. {PROMPT}"
            p, g = _rates(len(tok.tokenize(prompt.encode())), lambda: client.completions.create(
                model=cfg.served_model_name, prompt=prompt, max_tokens=max_tokens, temperature=0.0, stream=True))
            prompt_tps.append(p)
            gen_tps.append(g)
        assert srv.proc is not None
        rss = _tree_peak_rss_mb(srv.proc.pid)
    return {"prompt_tps": _median(prompt_tps), "gen_tps": _median(gen_tps), "ready_s": ready_s,
            "server_ready_check_s": srv.ready_after_s or float("nan"), "peak_rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()
    cfg = get_model_config(args.model)
    gguf = ensure_gguf(cfg, print)
    threads = len(os.sched_getaffinity(0))
    # in-process first: its peak RSS is this process's, measured before the HTTP path adds a tokenizer
    local = measure_in_process(gguf, args.runs, args.max_tokens, threads, cfg.context_length)
    http = measure_http(args.model, args.runs, args.max_tokens)
    print(f"model {args.model}  ({gguf.stat().st_size / 1e6:.0f} MB GGUF, {threads} threads, "
          f"{args.runs} runs, {args.max_tokens} tokens, median)")
    print(f"{'':24}{'prompt tok/s':>14}{'gen tok/s':>12}{'peak RSS MB':>13}")
    print(f"{'HTTP server':24}{http['prompt_tps']:>14.1f}{http['gen_tps']:>12.1f}{http['peak_rss_mb']:>13.0f}")
    print(f"{'in-process':24}{local['prompt_tps']:>14.1f}{local['gen_tps']:>12.1f}{local['peak_rss_mb']:>13.0f}")
    print(f"ratio HTTP / in-process: prompt {http['prompt_tps'] / local['prompt_tps']:.2f}, "
          f"generation {http['gen_tps'] / local['gen_tps']:.2f}  (target >= 0.9)")
    print(f"time to ready: {http['ready_s']:.2f} s from launch ({http['server_ready_check_s']:.2f} s of polling)")


if __name__ == "__main__":
    main()
