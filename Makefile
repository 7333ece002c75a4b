# The course in two commands:   make start   (set up + open JupyterLab)
#                               make test    (ruff, unit tests + every notebook, quick profile)
# While changing the package:   make test-fast  (ruff + unit tests: no notebooks, no browser)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

# One data root for every dataset and weight file. A prepared offline copy beside the
# checkout (../shared/course-data: CI, classrooms) is used as it is; otherwise ~/.cache/tlcourse.
export TLCOURSE_DATA ?= $(if $(wildcard ../shared/course-data/README.md),$(abspath ../shared/course-data),$(HOME)/.cache/tlcourse)
# glibc's default allocator hands freed training buffers back to the OS and maps them again
# every step; on small CPUs that made PyTorch training several times slower at random.
export MALLOC_MMAP_MAX_ ?= 0
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184
# One heap for all threads: with a heap per PyTorch worker thread, each kept its own freed
# buffers and lessons peaked about 400 MB higher (benchmarks/README.md, "allocator").
export MALLOC_ARENA_MAX ?= 1
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: start install data lab lint test test-fast test-unit test-notebooks site site-build benchmark benchmark-full clean lock

start: install data lab

# Installs requirements.lock: every package of the tested environment (requirements.txt,
# requirements-dev.txt, requirements-docs.txt and all they pull in), exact versions, hashes
# checked. Made on Linux x86-64 / Python 3.11; elsewhere: pip install -r requirements.txt -e .
install: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $@

# Re-resolve the whole environment from the top-level files (requirements.txt and every
# requirements-*.txt) into requirements.lock (hashed) and binder/requirements.lock (the
# learner's part). Run it after changing a pin; pip-tools runs in its own venv (.lock-tools).
LOCK_TOOLS ?= .lock-tools
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet pip-tools==7.6.2
	$(LOCK_TOOLS)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	  --no-emit-index-url --no-emit-find-links --output-file=requirements.lock \
	  $(sort $(wildcard requirements-*.txt))
	$(LOCK_TOOLS)/bin/python tools/binder_lock.py

data: install
	$(PY) data_scripts/fetch_data.py --all --weights auto

lab: install
	TLCOURSE_BACKBONE=$$($(PY) -m tlcourse.backbones) \
	$(PY) -m jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

# ruff check: settings (line length, rules) in pyproject.toml; the lessons are checked too.
lint: install
	$(PY) -m ruff check .

test: install lint
	TLCOURSE_PROFILE=$${TLCOURSE_PROFILE:-quick} TLCOURSE_BACKBONE=$$($(PY) -m tlcourse.backbones) \
	$(PY) -m pytest $(PYTEST_ARGS)

# The package's unit tests and doctests, without the notebooks and without the browser test
# (it starts JupyterLab and Chromium; `make test` runs it).
test-unit: install
	$(PY) -m pytest tlcourse tools tests -m "not browser" $(PYTEST_ARGS)

# Lint + unit tests: what to run after every change to the package (a few minutes).
test-fast: install lint
	$(PY) -m pytest tlcourse tools tests -m "not browser and not slow" $(PYTEST_ARGS)

test-notebooks: install
	TLCOURSE_PROFILE=$${TLCOURSE_PROFILE:-quick} TLCOURSE_BACKBONE=$$($(PY) -m tlcourse.backbones) \
	$(PY) -m pytest notebooks $(PYTEST_ARGS)

# The course website (artifacts/site/): the lessons as `make test` executed them (saved by
# notebooks/conftest.py to artifacts/executed/), rendered by Sphinx + MyST-NB without executing.
# `make site` first executes (quick profile) only the lessons whose saved run is missing, older
# than the notebook, or failed; `make site-build` only renders (CI runs it after `make test`).
site: install
	@stale="$$($(PY) tools/build_site.py --list-stale)"; \
	if [ -n "$$stale" ]; then echo "site: executing $$stale"; \
	  TLCOURSE_PROFILE=quick TLCOURSE_BACKBONE=$$($(PY) -m tlcourse.backbones) \
	  $(PY) -m pytest $$stale $(PYTEST_ARGS) || exit 1; fi
	$(PY) tools/build_site.py

site-build: install
	$(PY) tools/build_site.py

benchmark: install
	TLCOURSE_BACKBONE=$$($(PY) -m tlcourse.backbones) $(PY) benchmarks/run.py $(BENCH_ARGS)

# The full profile (what a learner gets by default) of exactly the lessons whose code or tlcourse
# modules changed since their recorded full run (tests/test_recorded_fingerprints.py names them),
# from an empty cache, recorded with EfficientNet-Lite0 (CI's backbone); then the title cells and
# README show the new times. BENCH_ARGS="--notebooks 03" narrows it further.
benchmark-full: install
	TLCOURSE_BACKBONE=efficientnet_lite0 TLCOURSE_CACHE=$$(mktemp -d) \
	$(PY) benchmarks/run.py --only notebooks --profile full --stale --record $(BENCH_ARGS)
	$(PY) tools/sync_times.py

clean:
	rm -rf $(VENV) .pytest_cache
