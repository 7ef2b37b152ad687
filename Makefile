# make demo: create .venv, install sluicegate, run the demo job on the embedded SQLite store.
# make test: install what the tests need (redis-server through apt when missing), run the suite.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STORE := sqlite:///out/demo.db

.PHONY: demo test lint bench redis-server clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,redis,plot]'
	touch $(STAMP)

demo: $(STAMP)
	@mkdir -p out && rm -f out/demo.db out/demo.db-wal out/demo.db-shm
	$(VENV)/bin/sluicegate send orders --count 3000 --app examples/demo.py --store $(DEMO_STORE)
	$(VENV)/bin/sluicegate run examples/demo.py --until-empty --store $(DEMO_STORE)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server through apt"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

test: $(STAMP) redis-server
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m pip install --quiet -e '.[lint]'
	$(PY) -m ruff check src tests bench examples
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) out .pytest_cache .hypothesis
