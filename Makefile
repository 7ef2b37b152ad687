# make demo: create .venv, install sluicegate, run the demo job on the embedded SQLite store.
# make test: install what the tests need (redis-server through apt when missing), run the suite.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STORE := sqlite:///out/demo.db

# The compiled build (setup.py): the simulator's hot modules compiled with mypyc, two to
# four times as fast (docs/performance.md). SLUICEGATE_COMPILE=0 make ... installs the pure-Python package instead.
SLUICEGATE_COMPILE ?= 1
export SLUICEGATE_COMPILE
COMPILED := $(shell sed -n 's|^    "\(sluicegate/.*\.py\)",$$|src/\1|p' setup.py)

.PHONY: demo test lint bench redis-server clean

# Rebuilt when a compiled module changes (its extension would otherwise shadow the edit),
# or when the build choice changes; extensions of an earlier build go first.
$(STAMP): pyproject.toml setup.py build_support/sluicegate_build.py $(COMPILED) $(VENV)/.build-$(SLUICEGATE_COMPILE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	find src -name '*.so' -delete
	$(PY) -m pip install --quiet -e '.[test,redis,plot]' || { \
	  [ "$(SLUICEGATE_COMPILE)" = 1 ] && [ "$${CI:-}" != true ] && \
	  echo "the compiled build failed (no C compiler or Python headers?): installing the pure-Python package" && \
	  find src -name '*.so' -delete && \
	  SLUICEGATE_COMPILE=0 $(PY) -m pip install --quiet -e '.[test,redis,plot]'; }
	touch $(STAMP)

$(VENV)/.build-%:
	@mkdir -p $(VENV) && rm -f $(VENV)/.build-* && touch $@

demo: $(STAMP)
	@mkdir -p out && rm -f out/demo.db out/demo.db-wal out/demo.db-shm
	$(VENV)/bin/sluicegate send orders --count 3000 --app examples/demo.py --store $(DEMO_STORE)
	$(VENV)/bin/sluicegate run examples/demo.py --until-empty --store $(DEMO_STORE)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server through apt"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# two workers: the suite's time is mostly waiting (real clocks, processes, redis-servers),
# and one worker per core keeps it well under 10 minutes on 2 cores
test: $(STAMP) redis-server
	$(PY) -m pytest -q -n 2

lint: $(STAMP)
	$(PY) -m pip install --quiet $$($(PY) -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['lint']))")
	$(PY) -m ruff check src tests bench examples setup.py build_support
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis build
	find src -name '*.so' -delete
