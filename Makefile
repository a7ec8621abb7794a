# Lifewatch: every target creates and uses the virtualenv at .venv.
# On a fresh machine `make demo` and `make test` do everything, including
# installing Mosquitto and InfluxDB from Debian's packages when run as root.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
LW     := $(VENV)/bin/lifewatch
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: help venv deps demo test bench eval lint services-up services-down status clean

help:
	@echo "make demo     services + simulated Shihezi city at 60x + ingest (DURATION=120 to bound it)"
	@echo "make test     the whole test suite against real Mosquitto and InfluxDB"
	@echo "make bench    ingest benchmarks and the drain comparison with Node-RED"
	@echo "make eval     detectors: the full NAB corpus and the 7-day simulated incident library"
	@echo "make lint     ruff"
	@echo "make services-up / services-down   project-local Mosquitto and InfluxDB"
	@echo "make console-deps   Debian's Chromium for the crew console's browser tests"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# system binaries (mosquitto, influxd): installed with apt-get when missing and root
deps: $(STAMP)
	$(LW) services install

demo: deps
	$(LW) demo $(if $(DURATION),--duration $(DURATION),)

# headless Chromium (and a CJK font for the screenshots) for tests/alerts/test_console.py: Debian's packages, as root
.PHONY: console-deps
console-deps:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; \
	  else echo "console-deps: /usr/bin/chromium is missing; as root: apt-get install -y chromium" >&2; exit 1; fi; }

test: deps console-deps
	$(PY) -m pytest $(PYTEST_ARGS)

bench: deps
	$(PY) -m bench.run

# bounded (a few minutes): not part of make test, which runs reduced versions
eval: $(STAMP)
	$(LW) eval nab --out .lifewatch/eval/nab
	$(LW) eval scenarios --days 7

lint: $(STAMP)
	$(VENV)/bin/ruff check .

services-up: deps
	$(LW) services up

services-down: $(STAMP)
	$(LW) services down

status: $(STAMP)
	$(LW) status

clean:
	-$(LW) services down
	rm -rf .lifewatch .pytest_cache
