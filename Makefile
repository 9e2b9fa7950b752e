# Set-up and the two everyday commands. Every target installs what it needs first (idempotent).
PYTHON ?= python3.11
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: setup run test lint clean

# System package: bubblewrap (the default sandbox). Installed with apt when we are root, else we say how.
/usr/bin/bwrap:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; \
	else echo "bubblewrap missing: run 'sudo apt-get install bubblewrap' (or use --sandbox apptainer)"; fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
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
