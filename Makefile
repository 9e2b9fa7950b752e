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

test: setup
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/python -m pyflakes hpc_agent tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache
