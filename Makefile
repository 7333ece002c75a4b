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

.PHONY: start install data lab lint test test-fast test-unit test-notebooks site site-build benchmark benchmark-full clean lock python-version test-colab test-gpu translate

start: install data lab

# Installs requirements.lock: every package of the tested environment (requirements.txt,
# requirements-dev.txt, requirements-docs.txt and all they pull in), exact versions, hashes
# checked. One universal lock: environment markers pick the files of Linux (x86-64, aarch64),
# macOS (arm64, 14+) and Windows (x86-64) on Python 3.11-3.13 (tests/test_lock_platforms.py);
# CUDA's wheels (nvidia-*, triton) only on Linux. The Python is checked first (python-version).
install: $(VENV)/.installed
$(VENV)/.installed: requirements.lock pyproject.toml
	@$(MAKE) --no-print-directory python-version PYTHON=$(if $(wildcard $(PY)),$(PY),$(PYTHON))
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install --no-deps -e .
	touch $@

# The Python that makes the venv must be one the lock installs on: 3.11 (3.11.5 or newer: the
# docs tools' soupsieve needs it), 3.12 or 3.13. Anything else stops here, saying what to do.
python-version:
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(not ((3, 11, 5) <= v[:3] and v[:2] <= (3, 13)))' \
	  2>/dev/null || { \
	  echo "make: this course needs Python 3.11 (3.11.5 or newer), 3.12 or 3.13;"; \
	  echo "      '$(PYTHON)' is $$($(PYTHON) --version 2>&1 | head -n 1)."; \
	  echo "  Install one of them (python.org, your package manager, pyenv, or: uv python install 3.12),"; \
	  echo "  then run, with that Python's command or path:"; \
	  echo "      make start PYTHON=python3.12"; \
	  echo "  (An existing $(VENV) made with another Python: delete it first, rm -rf $(VENV).)"; \
	  exit 1; }

# Re-resolve the whole environment from the top-level files (requirements.txt and every
# requirements-*.txt) into requirements.lock, then binder/requirements.lock (the learner's part).
# uv (at the version of constraints/lock-tools.txt, in its own venv .lock-tools) writes one
# universal lock: hashes for every file, markers for every platform and Python >= 3.11.5. Versions
# already in requirements.lock are kept (uv reads it as preferences): after changing a pin only that
# package (and what it needs) moves; `make lock LOCK_ARGS=--upgrade` moves everything to the newest.
# tests/test_lock_platforms.py then resolves it for each platform x Python.
LOCK_TOOLS ?= .lock-tools
lock:
	$(PYTHON) -m venv $(LOCK_TOOLS)
	$(LOCK_TOOLS)/bin/pip install --quiet --require-hashes -r constraints/lock-tools.txt
	UV_PYTHON_DOWNLOADS=never $(LOCK_TOOLS)/bin/uv pip compile --quiet --universal --python-version 3.11.5 \
	  --generate-hashes $(LOCK_ARGS) -o requirements.lock $(sort $(wildcard requirements-*.txt))
	$(LOCK_TOOLS)/bin/python tools/binder_lock.py

# Every lesson (smoke profile, EfficientNet-Lite0, a fresh cache) on Colab's package versions, in a
# second venv (COLAB_VENV): constraints/colab.txt (made from ../shared/platforms/colab-pip-freeze.txt
# by `tools/platform_env.py constraints`) installed first (by uv, whose cache keeps the ~3 GB of
# wheels for the next build), then the course the way the set-up cell installs it (pip: only what
# is missing; nothing of Colab's may move). There: the widget tests on Colab's ipywidgets 7.7.1,
# then every notebooks/NN_*.ipynb, one line each (COLAB_LESSONS="00 04" for some). Python 3.13,
# Colab's, when this machine has it (COLAB_PYTHON=... to choose). CI's last step (.ci/run); not
# part of `make test`. Both parts run; either failing fails the target.
COLAB_VENV ?= /tmp/tlcourse-colab
test-colab:
	$(PYTHON) tools/platform_env.py build --venv $(COLAB_VENV) $(if $(COLAB_PYTHON),--python $(COLAB_PYTHON))
	@rc=0; \
	$(PYTHON) tools/platform_env.py widgets --venv $(COLAB_VENV) || rc=1; \
	TLCOURSE_BACKBONE=efficientnet_lite0 TLCOURSE_CACHE=$$(mktemp -d)/tlcourse-cache \
	  $(PYTHON) tools/platform_env.py run --venv $(COLAB_VENV) $(if $(COLAB_LESSONS),--lessons $(COLAB_LESSONS)) || rc=1; \
	exit $$rc

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
	TLCOURSE_BACKBONE=$${TLCOURSE_BACKBONE:-$$($(PY) -m tlcourse.backbones)} \
	$(PY) -m pytest tlcourse tools tests -m "not browser" $(PYTEST_ARGS)

# Lint + unit tests: what to run after every change to the package (a few minutes).
test-fast: install lint
	TLCOURSE_BACKBONE=$${TLCOURSE_BACKBONE:-$$($(PY) -m tlcourse.backbones)} \
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
	$(PY) tools/translate.py

# The Chinese edition: notebooks/zh/ from the English lessons and translations/zh/ (after any edit of
# a lesson; `--check` names the translations to update first; README.zh-CN.md says how).
translate: install
	$(PY) tools/translate.py

# Every lesson (full profile) on a CUDA GPU through CI's executor, each checked to have run its
# work on the GPU (not silently on the CPU); the precision tests (bf16 where native, fp16 with a
# GradScaler); torchrun with 2 processes (NCCL) when 2 GPUs are present; per-lesson wall time and
# peak GPU memory recorded under `gpu` in benchmarks/recorded.json. Without a GPU it prints what it
# skips and exits 0 (GPU_ARGS=--require-gpu: exit 2). tools/test_gpu.py --help for the options.
test-gpu: install
	TLCOURSE_BACKBONE=$${TLCOURSE_BACKBONE:-$$($(PY) -m tlcourse.backbones)} $(PY) tools/test_gpu.py $(GPU_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
