# Two commands on a fresh machine: `make demo` (main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Installs come from the lock, exactly: every package pinned with its hashes (pip-tools).
LOCK   := requirements-lock.txt
EXTRAS := train,runtime,dev,coreml,detect,aws,cloudtest,pretrained,serve,ocr,heic
LOCKENV := .lockenv
PIP_TOOLS := pip-tools==7.7.0
# ultralytics asks for the GUI opencv-python; cardid uses opencv-python-headless only (one cv2).
COMPILE = $(LOCKENV)/bin/pip-compile --quiet --generate-hashes --all-build-deps --strip-extras \
	--unsafe-package opencv-python --no-emit-find-links --no-emit-index-url --no-emit-trusted-host \
	--extra $(EXTRAS) -o $(LOCK)

.PHONY: install demo test test-fast lint format bench clean lock upgrade

# The runtime alone (`cardid recognize`/`serve` with ONNX models, no torch): the same pins, fewer packages.
RUNTIME_LOCK := requirements-runtime-lock.txt
COMPILE_RUNTIME = $(LOCKENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-emit-find-links \
	--no-emit-index-url --no-emit-trusted-host --extra runtime -c $(LOCK) -o $(RUNTIME_LOCK)

$(STAMP): pyproject.toml $(LOCK) tools/lock.py
	@$(PYTHON) tools/lock.py check
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python tools/lock.py sync
	touch $(STAMP)

install: $(STAMP)

# After editing pyproject.toml's dependencies: `make lock` (keeps every pin it can, adds what is new);
# `make upgrade` takes the newest releases allowed; `make lock P=pkg==1.2` moves one package.
$(LOCKENV)/bin/pip-compile:
	$(PYTHON) -m venv $(LOCKENV)
	$(LOCKENV)/bin/pip install --quiet $(PIP_TOOLS)

lock: $(LOCKENV)/bin/pip-compile
	$(COMPILE) $(if $(P),--upgrade-package "$(P)") pyproject.toml
	$(COMPILE_RUNTIME) pyproject.toml
	$(PYTHON) tools/lock.py stamp

upgrade: $(LOCKENV)/bin/pip-compile
	$(COMPILE) --upgrade pyproject.toml
	$(COMPILE_RUNTIME) pyproject.toml
	$(PYTHON) tools/lock.py stamp

demo: $(STAMP)
	$(BIN)/cardid demo --out runs/demo

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/pytest -q -n 2 --dist loadfile tests

# The edit loop: everything but the tests marked slow (CI runs `make test`: all of them).
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist worksteal -m "not slow" tests

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks tools
	$(BIN)/ruff format src tests benchmarks tools

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_photo_sim.py

clean:
	rm -rf $(VENV) $(LOCKENV) runs .pytest_cache .ruff_cache
