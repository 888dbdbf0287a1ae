#!/usr/bin/env bash
# The learner's JupyterLab (`make lab`): the exercises, the course's environment as the kernel, nbgrader's
# Validate button, and nothing of the instructor's: no Formgrader, Create Assignment, course or assignment
# lists (scripts/lab-config turns them off, in the browser and on the server), no news or update pop-ups.
# The instructor's JupyterLab (book/instructor_guide.md) is a plain `jupyter lab` and keeps formgrader.
# Extra arguments go to `jupyter lab`; LAB_ROOT serves another folder than exercises/ (tests/browser/test_lab.py).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
# A config path before the environment's own: its settings win, the learner's ~/.jupyter stays theirs.
export JUPYTER_CONFIG_PATH="$here/scripts/lab-config${JUPYTER_CONFIG_PATH:+:$JUPYTER_CONFIG_PATH}"
args=(--ServerApp.root_dir="${LAB_ROOT:-$here/exercises}" --LabApp.news_url= --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate)
if [ "$(id -u)" -eq 0 ]; then
    args+=(--allow-root)
fi
exec "${JUPYTER:-$here/.venv/bin/jupyter}" lab "${args[@]}" "$@"
