"""Candidate generation: N answers per turn, as concurrent requests with distinct seeds.

Concurrent requests work on every OpenAI-compatible server (vLLM batches them, nearly free on a GPU;
llama.cpp serves them one after the other). Distinct seeds keep the answers apart even at temperature 0
on servers that sample; without a seed the server's own randomness is used.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hpc_agent.llm import ChatModel, ModelAnswer

SEED_STRIDE = 7919  # candidate j of seed s asks for s + j * SEED_STRIDE: no overlap between cells' seeds


def candidate_seed(seed: int | None, j: int) -> int:
    """Candidate j of several: the run's seed (0 when none) plus j strides, so each asks for its own."""
    return (seed or 0) + j * SEED_STRIDE


def generate(client: ChatModel, messages: list[dict[str, str]], n: int, *, seed: int | None,
             temperature: float | None) -> list[ModelAnswer]:
    """`n` answers to the same conversation, in candidate order (an infrastructure error propagates)."""
    if n == 1:
        return [client.complete(messages, seed=seed, temperature=temperature)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(client.complete, messages, seed=candidate_seed(seed, j), temperature=temperature)
                   for j in range(n)]
        return [f.result() for f in futures]
