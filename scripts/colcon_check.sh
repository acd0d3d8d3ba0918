#!/usr/bin/env bash
# The README's "On a ROS 2 machine" section, followed literally in a workspace, with the ROS 2 of
# the active virtual environment (PyPI wheels) as the underlay; then checks of what it installed.
#
# The section's steps, and what stands for them here:
#   source /opt/ros/<distro>/setup.bash      AMENT_PREFIX_PATH=CMAKE_PREFIX_PATH=$VIRTUAL_ENV
#   mkdir -p ~/ws/src && cd ~/ws/src && git clone <this repository> feature_matching_ros
#                                            a workspace whose src/feature_matching_ros links here
#   rosdep install --from-paths src -y --ignore-src
#                                            skipped: the venv's requirements are the dependencies
#   pip install kornia poselib rosbags       as is
#   colcon build --packages-select feature_matching_ros     as is (plus this script's arguments)
#   source install/setup.bash                as is
#   fm-weights fetch --all                   as is: must be the install space's command
# Then: the install space holds the generated messages and typesupport, the Python sources, share/
# and the executables; the messages import from it with the workspace's libraries; every console
# script of setup.py is in lib/feature_matching_ros (`ros2 run`) and every fm-* tool in bin/, first
# on PATH, and runs; the venv's own fm-* scripts still run in the sourced shell; each node
# executable starts from the install space and stops cleanly on Ctrl-C; `ros2 pkg prefix` and
# `ros2 run` find the package where ros2cli is installed (under CI=true it must be).
#
# Arguments go to `colcon build`, e.g. --symlink-install. Environment: FM_WS=DIR builds in DIR and
# keeps it (default: a temporary workspace, removed unless FM_KEEP_WS=1); FM_SKIP_BUILD=1 checks the
# install space already in FM_WS without pip or colcon.
set -euo pipefail

fail() {
    echo "colcon_check.sh: FAIL: $*" >&2
    exit 1
}
say() { echo "colcon_check.sh: $*   [${SECONDS} s]"; }

if [[ -z "${VIRTUAL_ENV:-}" || ! -x "${VIRTUAL_ENV}/bin/python" ]]; then
    echo "colcon_check.sh: no virtual environment is active (VIRTUAL_ENV is unset)." >&2
    echo "  Activate one first, e.g.: . .venv/bin/activate   (or run: make setup)" >&2
    exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG=feature_matching_ros
PY="${VIRTUAL_ENV}/bin/python"
NODES=(feature_matcher_node geometry_node navigator_node)
PROFILE_VARIABLES=(FASTDDS_DEFAULT_PROFILES_FILE FASTRTPS_DEFAULT_PROFILES_FILE FASTDDS_BUILTIN_TRANSPORTS)

# On any exit: background jobs of this script not waited for yet are stopped, the temporary
# workspace removed.
REMOVE_WS=0
cleanup() {
    local pid
    for pid in $(jobs -p); do
        kill -KILL "${pid}" 2>/dev/null || true
    done
    if ((REMOVE_WS)); then
        rm -rf "${WS}"
    fi
}
trap cleanup EXIT

if [[ -n "${FM_WS:-}" ]]; then
    mkdir -p "${FM_WS}"
    WS="$(cd "${FM_WS}" && pwd)"
elif [[ "${FM_SKIP_BUILD:-0}" == 1 ]]; then
    fail "FM_SKIP_BUILD=1 needs FM_WS, the workspace to check"
else
    WS="$(mktemp -d "${TMPDIR:-/tmp}/fm_colcon_check.XXXXXX")"
    if [[ "${FM_KEEP_WS:-0}" == 1 ]]; then
        say "keeping workspace ${WS}"
    else
        REMOVE_WS=1
    fi
fi
INSTALL="${WS}/install/${PKG}"

# The underlay: the venv's ROS 2, as /opt/ros/<distro>/setup.bash would set it on a ROS machine.
export AMENT_PREFIX_PATH="${VIRTUAL_ENV}"
export CMAKE_PREFIX_PATH="${VIRTUAL_ENV}"
export PATH="${VIRTUAL_ENV}/bin:${PATH}"
# Nodes started below stay off the DDS domains of tests and other processes.
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}"

if [[ "${FM_SKIP_BUILD:-0}" != 1 ]]; then
    command -v colcon >/dev/null 2>&1 \
        || fail "colcon not found in ${VIRTUAL_ENV}; pip install -r ${ROOT}/requirements/dev.txt"
    build_help="$(colcon build --help 2>&1)" || fail "colcon build --help failed: ${build_help}"
    [[ "${build_help}" == *--packages-select* ]] \
        || fail "colcon has no --packages-select (colcon-package-selection); pip install -r ${ROOT}/requirements/dev.txt"
    mkdir -p "${WS}/src"
    if [[ ! -e "${WS}/src/${PKG}" ]]; then
        ln -s "${ROOT}" "${WS}/src/${PKG}"
    fi
    say "rosdep install: skipped (the venv's requirements are the dependencies)"
    say "pip install kornia poselib rosbags"
    pip install kornia poselib rosbags >"${WS}/pip.log" 2>&1 \
        || { cat "${WS}/pip.log" >&2; fail "pip install kornia poselib rosbags failed"; }
    # colcon passes -jN -lN to make unless MAKEFLAGS sets them; the load limit serialises the
    # build on a busy 2-core machine.
    MAKEFLAGS="-j$(nproc 2>/dev/null || echo 2)"
    export MAKEFLAGS
    say "colcon build --packages-select ${PKG}${*:+ $*} (in ${WS})"
    start=${SECONDS}
    if ! (cd "${WS}" && colcon build --packages-select "${PKG}" "$@" >"${WS}/colcon.log" 2>&1); then
        tail -n 80 "${WS}/colcon.log" >&2
        find "${WS}/log/latest_build" -name stderr.log -exec tail -n 40 {} + >&2 2>/dev/null || true
        fail "colcon build failed"
    fi
    say "built in $((SECONDS - start)) s"
fi

[[ -d "${INSTALL}" ]] || fail "no install space ${INSTALL}"
[[ -f "${WS}/install/setup.bash" ]] \
    || fail "no install/setup.bash: colcon-bash is missing; pip install -r ${ROOT}/requirements/dev.txt"

say "source install/setup.bash"
# The setup scripts are not written for set -eu.
set +eu
# shellcheck disable=SC1091
source "${WS}/install/setup.bash"
set -eu

SITE="$("${PY}" -c 'import sys; print(f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages")')"
PY_PKG="${INSTALL}/${SITE}/${PKG}"

say "fm-weights fetch --all"
[[ "$(command -v fm-weights)" == "${INSTALL}/bin/fm-weights" ]] \
    || fail "fm-weights on PATH is '$(command -v fm-weights)', not the install space's ${INSTALL}/bin/fm-weights"
fm-weights fetch --all >"${WS}/fm-weights.log" 2>&1 \
    || { cat "${WS}/fm-weights.log" >&2; fail "fm-weights fetch --all failed after source install/setup.bash"; }

# Files that a ROS machine's install space must hold.
for f in \
    "${PY_PKG}/msg/__init__.py" \
    "${PY_PKG}/msg/_match_array.py" \
    "${PY_PKG}/msg/_geometry_estimate.py" \
    "${INSTALL}/share/${PKG}/package.xml" \
    "${INSTALL}/share/${PKG}/msg/MatchArray.msg" \
    "${INSTALL}/share/${PKG}/msg/GeometryEstimate.msg" \
    "${INSTALL}/share/ament_index/resource_index/packages/${PKG}"; do
    [[ -e "${f}" ]] || fail "missing ${f#"${WS}"/}"
done
compgen -G "${PY_PKG}/${PKG}_s__rosidl_typesupport_c*.so" >/dev/null || fail "no typesupport module in ${PY_PKG}"
compgen -G "${INSTALL}/lib/lib${PKG}__rosidl_generator_py.so" >/dev/null || fail "no generator_py library"
cmp -s "${ROOT}/${PKG}/__init__.py" "${PY_PKG}/__init__.py" \
    || fail "${PKG}/__init__.py in the install space is not the source one (generated stub?)"
# Every Python source file of the package is installed.
while IFS= read -r src; do
    [[ -e "${PY_PKG}/${src}" ]] || fail "Python source ${PKG}/${src} not installed"
done < <(cd "${ROOT}/${PKG}" && find . -name '*.py' -not -path '*/__pycache__/*' | sed 's|^\./||')
# Everything of launch/ and config/ is installed to share/.
for d in config launch; do
    [[ -d "${ROOT}/${d}" ]] || continue
    while IFS= read -r src; do
        [[ -e "${INSTALL}/share/${PKG}/${d}/${src}" ]] || fail "${d}/${src} not installed to share/${PKG}/${d}"
    done < <(cd "${ROOT}/${d}" && find . -type f -not -path '*/__pycache__/*' | sed 's|^\./||')
done

# The messages import from the install space, as in a node started by `ros2 run`: the checkout is
# dropped from sys.path (the venv's editable .pth adds it) and the typesupport loaded. The wheels'
# bootstrapper re-execs Python with an LD_LIBRARY_PATH in random order, so that step is done here
# instead, with the install space first (the venv's lib/ may hold the same libraries from
# scripts/build_msgs.sh). The package's libraries must all come from the workspace; the others
# (rcl, rosidl, ...) come from the venv, whatever the directories above it are called.
libs="${INSTALL}/lib:${LD_LIBRARY_PATH:-}:${VIRTUAL_ENV}/lib"
for d in "${VIRTUAL_ENV}/${SITE}"/ros_*.libs; do
    if [[ -d "${d}" ]]; then
        libs="${libs}:${d}"
    fi
done
say "importing the messages from ${INSTALL}"
(cd / && LD_LIBRARY_PATH="${libs}" _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 \
    FM_ROOT="${ROOT}" FM_INSTALL="${INSTALL}" FM_WS="${WS}" FM_PKG="${PKG}" \
    "${PY}" - <<'EOF'
import os
import sys

root = os.path.realpath(os.environ["FM_ROOT"])
install = os.path.abspath(os.environ["FM_INSTALL"]) + os.sep
workspace = os.path.realpath(os.environ["FM_WS"]) + os.sep  # --symlink-install links into build/
package = os.environ["FM_PKG"]
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.getcwd()) != root]

import feature_matching_ros  # noqa: E402
import feature_matching_ros.msg as msg  # noqa: E402

for mod in (feature_matching_ros, msg):
    assert os.path.abspath(mod.__file__).startswith(install), f"{mod.__name__} from {mod.__file__}"
for cls in (msg.MatchArray, msg.GeometryEstimate):
    cls.__class__.__import_type_support__()
    assert cls.__class__._TYPE_SUPPORT is not None, cls
m = msg.MatchArray(query_points=[1.0, 2.0], confidence=[0.5])
assert list(m.query_points) == [1.0, 2.0]

with open("/proc/self/maps") as f:
    mapped = {line.split()[-1] for line in f if "/" in line}
ours = {p for p in mapped if package in os.path.basename(p)}
assert ours, "no feature_matching_ros library mapped"
stray = sorted(p for p in ours if not os.path.realpath(p).startswith(workspace))
assert not stray, f"the package's libraries loaded from outside the workspace: {stray}"
print(f"colcon_check.sh: imported {msg.__file__}")
EOF
) || fail "the messages do not import from the install space ${INSTALL}"

# Console scripts: the install space's distribution (first on sys.path after sourcing) declares
# the same ones as the venv's installation of the checkout, each is in lib/<package>/ and every fm-*
# one in bin/.
say "console scripts"
scripts="$(cd / && FM_INSTALL="${INSTALL}" "${PY}" - <<'EOF'
import os
import sys
from importlib import metadata

install = os.path.abspath(os.environ["FM_INSTALL"]) + os.sep
dists = [d for d in metadata.distributions() if d.metadata["Name"].replace("_", "-") == "feature-matching-ros"]
if not dists:
    sys.exit("no feature_matching_ros distribution on sys.path")
where = [str(d.locate_file("")) for d in dists]
if not os.path.abspath(where[0]).startswith(install):
    sys.exit(f"the first feature_matching_ros distribution is in {where[0]}, not in the install space")
scripts = [{e.name: e.value for e in d.entry_points if e.group == "console_scripts"} for d in dists]
if not scripts[0]:
    sys.exit(f"the install space's metadata ({where[0]}) has no console_scripts")
for other, place in zip(scripts[1:], where[1:]):
    if other != scripts[0]:
        sys.exit(f"console_scripts differ: install space {scripts[0]} != {place} {other}")
print("\n".join(sorted(scripts[0])))
EOF
)" || fail "console scripts of the install space: see above"
tools=()
for name in ${scripts}; do
    [[ -x "${INSTALL}/lib/${PKG}/${name}" ]] || fail "executable lib/${PKG}/${name} not installed"
    if [[ "${name}" == fm-* ]]; then
        [[ "$(command -v "${name}")" == "${INSTALL}/bin/${name}" ]] \
            || fail "${name} on PATH is '$(command -v "${name}")', not the install space's bin/${name}"
        tools+=("${name}")
    fi
done
for name in "${NODES[@]}"; do
    [[ " ${scripts//$'\n'/ } " == *" ${name} "* ]] || fail "node executable ${name} is no console script"
done

# Every fm-* tool runs (--help), side by side; the venv's own wrapper too, through the sourced
# metadata.
say "${tools[*]} --help"
pids=()
for name in "${tools[@]}"; do
    "${name}" --help >"${WS}/${name}.help" 2>&1 &
    pids+=($!)
done
for i in "${!tools[@]}"; do
    wait "${pids[$i]}" || { cat "${WS}/${tools[$i]}.help" >&2; fail "${tools[$i]} --help failed"; }
done
if [[ -x "${VIRTUAL_ENV}/bin/fm-weights" ]]; then
    "${VIRTUAL_ENV}/bin/fm-weights" list >"${WS}/venv-fm-weights.log" 2>&1 \
        || { cat "${WS}/venv-fm-weights.log" >&2; fail "the venv's fm-weights fails after source install/setup.bash"; }
fi

# Each node executable starts from the install space, where it finds its share/ files (the Fast
# DDS profile it logs; with --symlink-install both resolve to the checkout's file), and stops
# cleanly on Ctrl-C.
say "${NODES[*]}: start, then Ctrl-C"
profile="$(realpath "${INSTALL}/share/${PKG}/config/fastdds_large_images.xml")"
marker="Fast DDS profile for camera images: "
unset_profile=()
for v in "${PROFILE_VARIABLES[@]}" RMW_IMPLEMENTATION; do
    unset_profile+=(-u "${v}")
done
pids=()
for name in "${NODES[@]}"; do
    env "${unset_profile[@]}" "${INSTALL}/lib/${PKG}/${name}" >"${WS}/${name}.log" 2>&1 &
    pids+=($!)
done
for i in "${!NODES[@]}"; do
    name="${NODES[$i]}"
    pid="${pids[$i]}"
    for _ in $(seq 1 600); do
        grep -qF "${marker}" "${WS}/${name}.log" && break
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
    done
    used="$(sed -n "s/.*${marker}//p" "${WS}/${name}.log" | head -n 1)"
    if [[ -z "${used}" || "$(realpath -m "${used}")" != "${profile}" ]]; then
        cat "${WS}/${name}.log" >&2
        fail "${name} did not start from the install space (its Fast DDS profile is '${used}', not ${profile})"
    fi
done
for i in "${!NODES[@]}"; do
    name="${NODES[$i]}"
    kill -INT "${pids[$i]}" 2>/dev/null || true
    code=0
    wait "${pids[$i]}" || code=$?
    if ((code != 0)) || grep -q Traceback "${WS}/${name}.log"; then
        cat "${WS}/${name}.log" >&2
        fail "${name} exited with ${code} on Ctrl-C"
    fi
done

# ros2cli: the README's `ros2 pkg prefix feature_matching_ros` and `ros2 run`.
if command -v ros2 >/dev/null 2>&1; then
    say "ros2 pkg prefix ${PKG}; ros2 run ${PKG} fm-weights list"
    prefix="$(ros2 pkg prefix "${PKG}")" || fail "ros2 pkg prefix ${PKG} failed"
    [[ "${prefix}" == "${INSTALL}" ]] || fail "ros2 pkg prefix ${PKG} is ${prefix}, not ${INSTALL}"
    ros2 run "${PKG}" fm-weights list >"${WS}/ros2-run.log" 2>&1 \
        || { cat "${WS}/ros2-run.log" >&2; fail "ros2 run ${PKG} fm-weights list failed"; }
elif [[ "${CI:-}" == true ]]; then
    fail "ros2 (ros2cli) not found; bash ${ROOT}/scripts/test_tools.sh installs it"
else
    say "ros2 not installed: ros2 pkg prefix / ros2 run not checked (bash scripts/test_tools.sh)"
fi

say "OK"
