# rnncourse: two commands do all the set-up on a fresh machine with Python 3.11.
#   make book   creates .venv from requirements.txt, installs rnncourse, builds the site
#   make test   the same set-up, then every test, stage by stage with timings
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.rnncourse-installed

.PHONY: setup book test bench bench-torch bench-triton bench-grade lab exercises freeze clean

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# --all re-reads every page so that warnings are reported on every build;
# executed notebooks are cached (_build/.jupyter_cache) and rerun only when changed.
# One BLAS thread per kernel: the chapters do many small matrix products,
# which threads slow down rather than speed up (results do not depend on it).
# jupyter-book runs the pages one after another, so scripts/execute_book.py first
# runs the changed ones BOOK_JOBS at a time (default: one per CPU) into that cache.
BOOK_JOBS ?=
book: setup
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/python scripts/execute_book.py $(if $(BOOK_JOBS),--jobs $(BOOK_JOBS))
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	$(BIN)/jupyter-book build --all . -W -n --keep-going
	$(BIN)/python scripts/exec_times.py
	@echo "The site is in _build/html/index.html"

test:
	bash scripts/test.sh

# Speed of rnncourse.numpy against torch.nn on the CPU (a benchmark, not a test).
# NumPy reference against torch.nn on the CPU; ARGS="--threads 1", "--quick", ... OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS builds) force NumPy onto older, slower kernels:
# unset for this command only, never for tests or CI (see the script's docstring).
bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/numpy_vs_torch.py $(ARGS)

# Speed of rnncourse.torch against torch.nn (cuDNN on a GPU); add ARGS="--device cuda".
bench-torch: setup
	$(BIN)/python benchmarks/torch_vs_cudnn.py $(ARGS)

# rnncourse's fused Triton kernels against cuDNN and a plain loop (needs a CUDA GPU); ARGS="--quick".
bench-triton: setup
	$(BIN)/python benchmarks/triton_vs_cudnn.py $(ARGS)

# Submissions per minute: `rnncourse grade` (sandboxed) against plain `nbgrader autograde`, and its cluster path
# (--scheduler) on a Dask cluster of this machine with 1 and 2 workers (ARGS="--no-cluster" skips that).
bench-grade: setup
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/grade_vs_nbgrader.py $(ARGS)

# The loop against the parallel scan of a linear recurrence, NumPy and PyTorch, one thread: writes
# benchmarks/results/scan_cpu.json, which chapter 8 reads (ARGS="--device cuda" on a GPU: scan_cuda.json).
.PHONY: bench-scan
bench-scan: setup
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python benchmarks/scan_crossover.py $(ARGS)

# Regenerate the student versions in exercises/ from the nbgrader sources in solutions/. A notebook
# changed since it was generated (a learner's answers) is skipped, and named; FORCE=1 overwrites it.
exercises: setup
	$(BIN)/python scripts/generate_exercises.py $(if $(FORCE),--force)

# JupyterLab on the exercises. Its "Python 3" kernel is the course's environment: a kernel
# whose command is "python" runs the Python of the Jupyter that starts it, here .venv/bin/python.
# nbgrader's Validate button is in each notebook's toolbar. (tests/browser/test_lab.py drives this.)
# No instructor panels (Formgrader, Create Assignment) and no pop-ups: see scripts/lab.sh.
lab: setup
	bash scripts/lab.sh

freeze:
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.txt.new
	@echo "Review requirements.txt.new, keep its header comment, and move it over requirements.txt"

clean:
	rm -rf _build .pytest_cache .hypothesis
