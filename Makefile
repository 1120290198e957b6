# Every target installs what it needs into .venv first, so each works alone on a fresh clone.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Two pytest workers, whole modules each, so a module's fixtures (the export matrix, a
# live server) are built once. Most tests wait on probe processes; two keep both cores busy.
XDIST ?= -n 2 --dist loadscope

.PHONY: install demo serve screenshots test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,export]'
	touch $(STAMP)

install: $(STAMP)

# The main job, in the order a newcomer reads it: the model, both builds agreeing, an
# instant estimate, then the measured answer (search, paired rounds, exports).
demo: $(STAMP)
	$(BIN)/fwadvisor models show lenet5
	$(BIN)/fwadvisor parity lenet5 mlp --size small
	$(BIN)/fwadvisor recommend lenet5 --answers data/examples/mobile.yaml
	$(BIN)/fwadvisor recommend lenet5 --answers data/examples/mobile.yaml --mode measure --trials 4

serve: $(STAMP)
	$(BIN)/fwadvisor serve

# Full-page PNGs of the web pages and the zoo report at 1280 and 390 px, in var/screens/
# (headless /usr/bin/chromium; a throwaway server on 127.0.0.1, seeded without probes).
screenshots: $(STAMP)
	$(BIN)/python scripts/web_screenshots.py var/screens

test: lint
	$(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

# The PostgreSQL test starts a server from Debian's binaries: install them if missing
# (as .ci/run does for chromium); without them that one test is skipped, with a warning.
test-slow: $(STAMP)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v apt-get >/dev/null; then \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo -n"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$SUDO apt-get install -y -q postgresql </dev/null \
			|| { $$SUDO apt-get update -q </dev/null && $$SUDO apt-get install -y -q postgresql </dev/null; } \
			|| echo "warning: could not install postgresql; the PostgreSQL test will be skipped" >&2; \
	fi
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check probes recommender service tests benchmarks scripts
	$(BIN)/ruff format --check probes recommender service tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

bench: $(STAMP)
	$(BIN)/python benchmarks/parity_zoo.py --size default
	$(BIN)/python benchmarks/harness_overhead.py
	$(BIN)/python benchmarks/repeatability.py
	$(BIN)/python benchmarks/independent_harness.py
	$(BIN)/python benchmarks/probe_cost.py --size default
	$(BIN)/python benchmarks/tuner_efficiency.py
	$(BIN)/python benchmarks/deploy_zoo.py
	$(BIN)/python benchmarks/predictor_eval.py
	$(BIN)/python benchmarks/recommend_latency.py
	$(BIN)/python benchmarks/api_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
