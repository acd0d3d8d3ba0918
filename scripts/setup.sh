#!/usr/bin/env bash
# Set up everything in ./.venv: Python deps (CPU torch), ROS 2 wheels, the package, its messages, the weights.
# Idempotent: a second run checks stamps and verified files and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# CPU machines pin torch to the local CPU build; set FM_CONSTRAINTS= (empty) on a CUDA machine.
CONSTRAINTS=${FM_CONSTRAINTS-requirements/cpu-constraints.txt}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"

constraint_args=()
[ -n "$CONSTRAINTS" ] && constraint_args=(-c "$CONSTRAINTS")
stamp="$VENV/.fm-deps.sha256"
want=$(cat setup.py package.xml requirements/*.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python and ROS 2 wheel dependencies"
  pip install -q "${constraint_args[@]}" -r requirements/ros-wheels.txt -r requirements/dev.txt
  pip install -q "${constraint_args[@]}" --no-build-isolation -e . --config-settings editable_mode=compat
  echo "$want" >"$stamp"
else
  echo "setup: Python dependencies up to date"
fi

bash scripts/build_msgs.sh
fm-weights fetch --all
