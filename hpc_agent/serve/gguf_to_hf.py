"""Turn a GGUF into a Hugging Face model folder that `vllm serve` can load.

Why this exists: vLLM 0.32 has no GGUF loader, but the only copy of the small model that this
project can get (the package index carries it) is the Q4_K_M GGUF that llama.cpp serves. transformers
reads a GGUF and dequantizes it; this script saves the result as an ordinary folder (config.json,
tokenizer files, model.safetensors in bf16) once, so vLLM on the CPU serves the same weights.

Usage, with the python of the vLLM venv (it needs transformers, torch, safetensors and gguf; NOT the
project venv, which has none of them):

    python gguf_to_hf.py GGUF OUT_DIR

The folder is built beside OUT_DIR under a temporary name and renamed into place only when complete, so
OUT_DIR either does not exist or is whole. Run again with OUT_DIR present, it does nothing.
Standard library + transformers/torch/safetensors only: no import of hpc_agent.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

# What a finished folder holds (the tokenizer writes more; these are the ones vLLM cannot do without).
REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
SOURCE_RECORD = "gguf_source.json"


def complete(out: Path) -> bool:
    return out.is_dir() and all((out / name).is_file() for name in REQUIRED)


def _write_folder(gguf: Path, stage: Path) -> dict[str, object]:
    """Dequantize `gguf` into the (new, empty) folder `stage`; returns facts for the source record."""
    import safetensors.torch
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = stage.parent / "src"  # transformers wants a folder + file name; link, do not copy 0.5 GB
    src.mkdir()
    (src / "model.gguf").symlink_to(gguf.resolve())
    stage.mkdir()

    AutoTokenizer.from_pretrained(src, gguf_file="model.gguf").save_pretrained(stage)
    config = AutoConfig.from_pretrained(src, gguf_file="model.gguf")
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file="model.gguf", dtype=torch.bfloat16)
    # vLLM picks its model class from `architectures`, which a GGUF-derived config leaves empty.
    config.architectures = [type(model).__name__]
    config.dtype = "bfloat16"
    config.save_pretrained(stage)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(stage)

    # save_pretrained refuses a model loaded from a GGUF, so write the tensors ourselves. Tied weights
    # (lm_head = embed_tokens in the small Qwen models) share storage, which safetensors refuses: keep the
    # first name when the config ties them (vLLM ties them again), else store a copy.
    tied = bool(getattr(config, "tie_word_embeddings", False))
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen:
            if tied:
                continue
            tensor = tensor.clone()
        seen.add(ptr)
        tensors[name] = tensor.contiguous()
    safetensors.torch.save_file(tensors, str(stage / "model.safetensors"), metadata={"format": "pt"})
    return {"transformers": transformers.__version__, "torch": torch.__version__,
            "architectures": config.architectures, "tensors": len(tensors)}


def convert(gguf: Path, out: Path) -> bool:
    """Build `out` from `gguf` unless it is already complete; True when it was built now."""
    if complete(out):
        return False
    if out.exists():
        raise SystemExit(f"{out} exists but is not a complete model folder (missing one of {', '.join(REQUIRED)}); "
                         "remove it and run again")
    if not gguf.is_file():
        raise SystemExit(f"{gguf}: no such GGUF file")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        t0 = time.monotonic()
        stage = work / "out"
        facts = _write_folder(gguf, stage)
        record = {"gguf": str(gguf.resolve()), "gguf_size": gguf.stat().st_size,
                  "converted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "seconds": round(time.monotonic() - t0, 1), **facts}
        (stage / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        try:
            os.rename(stage, out)  # atomic on one file system; fails if `out` appeared meanwhile
        except OSError:
            if not complete(out):
                raise
            return False  # another process finished first; its folder is as good as ours
        return True
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print("usage: python gguf_to_hf.py GGUF OUT_DIR", file=sys.stderr)
        return 2
    gguf, out = Path(argv[0]).expanduser(), Path(argv[1]).expanduser()
    t0 = time.monotonic()
    built = convert(gguf, out)
    if built:
        print(f"converted {gguf} -> {out} in {time.monotonic() - t0:.1f} s")
    else:
        print(f"{out} is complete; nothing to do")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
