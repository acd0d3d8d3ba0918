#!/usr/bin/env bash
# Set up everything in ./.venv: Python deps (CPU torch), ROS 2 wheels, the package, its messages, the weights.
# Idempotent: a second run checks stamps and verified files and returns in seconds.
# FM_ROS_DISTRO picks the ROS 2 wheels: kilted (default, requirements/ros-wheels.txt) or jazzy
# (requirements/ros-wheels-jazzy.txt); give each distribution its own venv:
#   FM_ROS_DISTRO=jazzy VENV=.venv-jazzy bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
DISTRO=${FM_ROS_DISTRO:-kilted}
case "$DISTRO" in
  kilted) ROS_WHEELS=requirements/ros-wheels.txt ;;
  *) ROS_WHEELS=requirements/ros-wheels-$DISTRO.txt ;;
esac
if [ ! -f "$ROS_WHEELS" ]; then
  echo "setup: no ROS 2 wheel list for FM_ROS_DISTRO=$DISTRO ($ROS_WHEELS)" >&2
  exit 1
fi
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
distro_stamp="$VENV/.fm-ros-distro"
if [ -f "$distro_stamp" ] && [ "$(cat "$distro_stamp")" != "$DISTRO" ]; then
  echo "setup: $VENV holds ROS 2 $(cat "$distro_stamp"), not $DISTRO: use another VENV (or remove $VENV)" >&2
  exit 1
fi
echo "$DISTRO" >"$distro_stamp"
want=$(cat setup.py package.xml requirements/dev.txt "$ROS_WHEELS" "${CONSTRAINTS:-/dev/null}" \
  | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python and ROS 2 $DISTRO wheel dependencies"
  pip install -q "${constraint_args[@]}" -r "$ROS_WHEELS" -r requirements/dev.txt
  pip install -q "${constraint_args[@]}" --no-build-isolation -e . --config-settings editable_mode=compat
  echo "$want" >"$stamp"
else
  echo "setup: Python dependencies up to date"
fi

bash scripts/build_msgs.sh
# SEKD's and ALIKE's files are published only in their authors' git repositories: without
# github.com, FM_WEIGHTS_FROM names a directory of copies (verified against the manifest like any
# download). Magic Leap's non-commercial SuperPoint/SuperGlue files are skipped unless
# FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL=1 accepts their licence.
fm-weights fetch --all ${FM_WEIGHTS_FROM:+--from "$FM_WEIGHTS_FROM"}
