# Two commands from a fresh clone (Debian + Python 3.11):
#   make demo   installs everything, runs the quickstart notebook headless, writes out/
#   make test   installs everything (also Debian fonts), runs every test
# Both are idempotent: the virtualenv and Debian packages are installed only when missing.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
APT_PACKAGES := fonts-noto-cjk fonts-noto-core fonts-dejavu-core \
  tesseract-ocr tesseract-ocr-jpn tesseract-ocr-kor tesseract-ocr-chi-sim tesseract-ocr-hin \
  tesseract-ocr-ben
# The panel's browser test drives Debian's Chromium (Playwright cannot download one here).
TEST_APT_PACKAGES := chromium
PYTEST_ARGS ?=

.PHONY: demo test lint bench system-deps clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing python3-venv"; \
	  bash scripts/install-system-deps.sh python3-venv && $(PYTHON) -m venv $(VENV); }

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

# Fonts that cover Latin, CJK, Devanagari and Bengali for previews and contact sheets, and
# Tesseract with its language data for the same scripts (ig.check_text, best_of).
system-deps:
	@bash scripts/install-system-deps.sh $(APT_PACKAGES)

demo: $(STAMP) system-deps
	$(BIN)/python scripts/demo.py --out out

test: $(STAMP) system-deps
	@bash scripts/install-system-deps.sh $(TEST_APT_PACKAGES)
	$(BIN)/python -m ruff check imagenb tests benchmarks scripts
	$(BIN)/python -m mypy
	IMAGENB_STORE=$$(mktemp -d) $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run all

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
