# Two commands (see README):  make serve   — set up, build and serve the study site
#                             make test    — set up and run every test
# Everything lives in .venv; torch is pinned to the CPU wheel (installed first so pip
# never resolves a CUDA build), and Debian's chromium drives the browser tests.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: serve build test setup setup-test browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

setup: $(BIN)/python
	$(BIN)/python -m pip install -q -e .

setup-test: $(BIN)/python
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[runnables,test]'

browser:
	@command -v chromium >/dev/null && fc-list | grep -q "Noto Sans CJK" || { apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk; }

serve: setup
	$(BIN)/kb serve

build: setup
	$(BIN)/kb build

test: setup-test browser
	@$(BIN)/python -m pytest -n 2 --dist loadfile; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) site site_src/*.md site_src/papers site_src/concepts site_src/assets .cache test-output
