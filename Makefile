# credit-rl — the two commands of the README, and what they need.
#   make book   run the whole research book (default profile) and render the HTML report
#   make test   nbdev-clean/export sync check, nbdev-test, pytest (slow tests when CI=true)
#   make app    the run explorer (Voila) on 127.0.0.1:8866
# Both create .venv and install the package (torch as the CPU build) when missing.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
PROFILE ?= default
NBDEV_FLAGS := $(if $(filter true 1 yes,$(CI)),--flags slow,)

.PHONY: install book smoke golden app test check-sync clear-numba-cache nbdev-test pytest clean-runs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

book: $(STAMP) clear-numba-cache
	$(BIN)/credit-rl book --profile $(PROFILE)

smoke: $(STAMP) clear-numba-cache
	$(BIN)/credit-rl book --profile smoke

# The smoke book's metrics, run ids, paths and timed figures left out: tests/golden/smoke_metrics.json (tests/test_book.py).
golden: $(STAMP) clear-numba-cache
	$(BIN)/python -c "from credit_rl.book.publish import write_golden; write_golden()"

# The run explorer (Voila) on http://127.0.0.1:8866, reading the run folders under reports/.
app: $(STAMP)
	$(BIN)/python -c "import subprocess, sys; from credit_rl.book.figures import voila_command; sys.exit(subprocess.call(voila_command('nbs/apps/run_explorer.ipynb')))"

# nbdev's CI pattern: cleaning and exporting must not change anything that is committed.
check-sync: $(STAMP)
	@before="$$(git status --porcelain 2>/dev/null)"; \
	$(BIN)/nbdev-clean && $(BIN)/nbdev-export || exit 1; \
	after="$$(git status --porcelain 2>/dev/null)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev-clean / nbdev-export changed the tree: notebooks not clean or credit_rl/ out of sync:"; \
	  git status --porcelain; exit 1; \
	else echo "nbdev-clean and nbdev-export left the tree unchanged"; fi

# numba's on-disk cache does not notice a change in a kernel inlined from another module: start clean.
clear-numba-cache:
	@find credit_rl -name '*.nbi' -delete -o -name '*.nbc' -delete

nbdev-test: $(STAMP) clear-numba-cache
	$(BIN)/nbdev-test --n-workers 2 --timing $(NBDEV_FLAGS)

# pytest exits 5 when it collects nothing: that alone is not a failure; any other non-zero is.
pytest: $(STAMP)
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests (exit 5)"; rc=0; fi; exit $$rc

test: check-sync clear-numba-cache nbdev-test pytest

clean-runs:
	rm -rf reports/runs reports/book reports/site
