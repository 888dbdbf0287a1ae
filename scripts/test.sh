#!/usr/bin/env bash
# Every test of rnncourse, stage by stage, printing each stage's time.
# Called by `make test` (and so by .ci/run). Stops at the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."

summary=()
started=$SECONDS
report() {
    echo
    echo "=== stage times"
    for line in "${summary[@]}"; do echo "$line"; done
    printf '%-16s %6d s\n' "total" $((SECONDS - started))
}
trap report EXIT

stage() {
    local name=$1; shift
    local t0=$SECONDS
    echo "=== stage: $name"
    if "$@"; then
        summary+=("$(printf '%-16s %6d s' "$name" $((SECONDS - t0)))")
    else
        local rc=$?
        summary+=("$(printf '%-16s %6d s  FAILED (exit %d)' "$name" $((SECONDS - t0)) "$rc")")
        exit "$rc"
    fi
}

# One BLAS/OpenMP thread per test process, two processes: on a 2-core machine
# many tiny matrix products run several times faster this way than with each
# process spreading every product over both cores.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

stage "set-up" make --no-print-directory setup
stage "test set-up" bash scripts/install-test-deps.sh
stage "book build" make --no-print-directory book
stage "unit tests" .venv/bin/python -m pytest -n 2 -m "not slow" tests --ignore=tests/browser
stage "browser tests" .venv/bin/python -m pytest tests/browser
# Tests marked slow (whole grading batches in the sandbox, long trainings) last, timed on their own.
# --dist loadgroup: the tests of one xdist_group (test_cluster.py's, which share one Dask cluster) on one process.
stage "slow tests" .venv/bin/python -m pytest -n 2 --dist loadgroup -m slow tests --ignore=tests/browser
