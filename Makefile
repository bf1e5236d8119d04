# The two commands of the README, and what they need. Each target installs
# only what is missing, so a second run is quick.
#   make demo   run the bundled pipeline (calibrator, then target) on the embedded server
#   make test   run the test suite

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: setup demo test bench clean check-tools

setup: $(PY_STAMP) $(NODE_STAMP)

check-tools:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || \
	  { echo "lrt_workflow needs Python 3.11 or newer as '$(PYTHON)' (try: make PYTHON=python3.11 ...)"; exit 1; }
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "lrt_workflow needs Node.js and npm for its embedded CouchDB server (Debian/Ubuntu: apt-get install nodejs npm)"; exit 1; }

$(BIN)/python: | check-tools
	$(PYTHON) -m venv $(VENV)

# editable_mode=compat: Snakemake finds executor plugins by listing the modules on sys.path
# (pkgutil), and setuptools' default editable install hides a flat layout's packages behind an
# import hook that such a listing does not see; compat puts the project folder on sys.path instead,
# so `snakemake --executor picas` finds snakemake_executor_plugin_picas.
$(PY_STAMP): $(BIN)/python pyproject.toml setup.cfg
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --editable '.[test]' \
	  --config-settings editable_mode=compat
	touch $@

$(NODE_STAMP): package.json package-lock.json | check-tools
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The bundled pipeline (example/pipeline/), with the settings of config.yaml,
# run as the README says: lrt run. Run it again and Snakemake finds nothing to do.
demo: setup
	$(BIN)/lrt run

test: setup
	$(BIN)/python -m pytest

# Starts its own servers on a temporary folder; prints Markdown tables and writes them to benchmarks/RESULTS.md.
# Its section g runs benchmarks/executor.py: the picas executor next to Snakemake's local executor.
bench: setup
	$(BIN)/python benchmarks/bench.py --out benchmarks/RESULTS.md

clean:
	rm -rf $(VENV) node_modules .lrt .pytest_cache .hypothesis
