# rollback-bot: everything a fresh machine needs (Python 3.11+, Node/npm, git) is installed here,
# into project-local folders. A second run only reinstalls what changed.
PYTHON ?= python3
VENV   := .venv
# test files run on this many pytest-xdist workers (each with its own nx-27017 and temporary folders)
TEST_WORKERS ?= 2
BIN    := $(VENV)/bin
TOOLS  := .tools
NODE_BIN := $(abspath $(TOOLS)/node_modules/.bin)
export PATH := $(NODE_BIN):$(PATH)

.PHONY: local test lint bench bench-full soak deps clean

## make local: the emulated Slack workspace, the bot in Socket Mode, SQLite state, a sandbox target whose
## tenant data is on a local MongoDB-protocol server (nx-27017, in .local/mongo; stopped when it exits)
## Each run starts from a fresh broken sandbox; `make local LOCAL_ARGS=--keep` keeps the last run's.
local: deps
	$(BIN)/rollback-bot local $(LOCAL_ARGS)

## make test: lint, type-check and the whole test suite (tenant data and the MongoDB store on a local
## nx-27017 server the tests start and stop, or on TEST_MONGODB_URI when it is set)
test: deps $(TOOLS)/.browser
	$(BIN)/ruff check bot handlers tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

## make soak: the model-based search (tests/model) for long, on its fast tier: SOAK_SEQUENCES random sequences
## (default 2000) or SOAK_MINUTES (default 600), whichever comes first, in SOAK_WORKERS processes at once
## (default 4: an example mostly waits on the bot); prints how often each rule ran, the number of sequences and
## every invariant violation (with the shortest sequence found), and writes build/soak-report.json. Fails if any
## invariant was violated.
SOAK_SEQUENCES ?= 2000
SOAK_MINUTES ?= 600
SOAK_STEPS ?= 12
SOAK_BATCH ?= 25
SOAK_WORKERS ?= 4
soak: deps
	mkdir -p build
	rm -f build/soak-report*.json
	SOAK_SEQUENCES=$(SOAK_SEQUENCES) SOAK_MINUTES=$(SOAK_MINUTES) SOAK_STEPS=$(SOAK_STEPS) SOAK_BATCH=$(SOAK_BATCH) \
	  SOAK_WORKERS=$(SOAK_WORKERS) $(BIN)/python -m pytest tests/model/test_soak.py -n $(SOAK_WORKERS) \
	  -p no:cacheprovider --basetemp=build/soak-tmp $(PYTEST_ARGS); \
	  status=$$?; rm -rf build/soak-tmp; \
	  $(BIN)/python -m tests.model.soak_total build/soak-report-*.json || status=1; exit $$status

lint: deps
	$(BIN)/ruff check bot handlers tests bench
	$(BIN)/mypy

## make bench: the quick tier (< 10 min on 2 cores): every benchmark against its baseline at 3-5 rounds and
## smaller sizes, then one table; rows it does not measure come from the last full run, marked with its date
## and commit (bench/results/*.json hold every round)
bench: deps
	$(BIN)/python bench/run.py --tier quick $(BENCH_ARGS)

## make bench-full: the full tier (45 min or more here): 5 rounds, 1,000 tenants, full sizes, the informational rows
bench-full: deps
	$(BIN)/python bench/run.py --tier full $(BENCH_ARGS)

deps: $(VENV)/.installed $(TOOLS)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,local]'
	touch $@

# The TypeScript sandbox target's yarn installs offline from $(TOOLS)/yarn-offline-mirror: the registry's own
# tarball of the typescript pinned here (npm ci has just fetched it, so npm pack finds it in npm's cache).
$(TOOLS)/.installed: $(TOOLS)/package.json $(TOOLS)/package-lock.json
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	rm -rf $(TOOLS)/yarn-offline-mirror && mkdir -p $(TOOLS)/yarn-offline-mirror
	cd $(TOOLS)/yarn-offline-mirror && npm pack --silent --loglevel=error \
	  "https://registry.npmjs.org/typescript/-/typescript-$$(node -p 'require("../node_modules/typescript/package.json").version').tgz"
	touch $@

# The browser test drives Debian's chromium with Playwright, and Debian's colour emoji font makes the page's
# emoji (reactions, ✅, 🏁) show in its screenshots instead of empty boxes. Installing them needs root and apt;
# where that is not possible this says so, and the test is skipped (without chromium) with the reason.
$(TOOLS)/.browser: Makefile
	@need=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="chromium"; \
	fc-list 2>/dev/null | grep -q "Noto Color Emoji" || need="$$need fonts-noto-color-emoji"; \
	need="$${need# }"; \
	if [ -z "$$need" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $$need with apt-get, for the browser test"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$need >/dev/null 2>&1; }; } || \
	  echo "note: apt-get could not install $$need: without chromium the browser test is skipped; without" \
	       "fonts-noto-color-emoji its screenshots show emoji as empty boxes"; \
	else \
	  echo "note: not installing $$need (that needs root and apt-get): without chromium the browser test is" \
	       "skipped; without fonts-noto-color-emoji its screenshots show emoji as empty boxes"; \
	fi
	@touch $@

clean:
	rm -rf $(VENV) $(TOOLS)/node_modules $(TOOLS)/yarn-offline-mirror $(TOOLS)/.installed $(TOOLS)/.browser .pytest_cache .ruff_cache .mypy_cache
