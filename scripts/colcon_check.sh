#!/usr/bin/env bash
# Check that `colcon build` of this package works as on a ROS machine, using the ROS 2 of the
# active virtual environment (PyPI wheels) as the underlay.
#
# Builds a throw-away workspace (mktemp -d) whose src/ links to this checkout, with the default
# FM_INSTALL_PYTHON_PACKAGE=ON, then checks the install space: generated message module and
# typesupport, the Python sources, share/ files, and that the messages import from there (with the
# checkout removed from sys.path). Extra arguments go to `colcon build`, e.g. --symlink-install.
# FM_KEEP_WS=1 keeps the workspace for inspection.
set -euo pipefail

if [[ -z "${VIRTUAL_ENV:-}" || ! -x "${VIRTUAL_ENV}/bin/python" ]]; then
    echo "colcon_check.sh: no virtual environment is active (VIRTUAL_ENV is unset)." >&2
    echo "  Activate one first, e.g.: . .venv/bin/activate   (or run: make setup)" >&2
    exit 1
fi
if ! command -v colcon >/dev/null 2>&1; then
    echo "colcon_check.sh: colcon not found; pip install -r requirements/ros-wheels.txt" >&2
    exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PKG=feature_matching_ros
PY="${VIRTUAL_ENV}/bin/python"
WS="$(mktemp -d "${TMPDIR:-/tmp}/fm_colcon_check.XXXXXX")"
if [[ "${FM_KEEP_WS:-0}" == 1 ]]; then
    echo "colcon_check.sh: keeping workspace ${WS}"
else
    trap 'rm -rf "${WS}"' EXIT
fi

fail() {
    echo "colcon_check.sh: FAIL: $*" >&2
    exit 1
}

mkdir -p "${WS}/src"
ln -s "${ROOT}" "${WS}/src/${PKG}"

export AMENT_PREFIX_PATH="${VIRTUAL_ENV}"
export CMAKE_PREFIX_PATH="${VIRTUAL_ENV}"
# colcon passes -jN -lN to make unless MAKEFLAGS sets them; the load limit serialises the
# build on a busy 2-core machine.
MAKEFLAGS="-j$(nproc 2>/dev/null || echo 2)"
export MAKEFLAGS

echo "colcon_check.sh: colcon build in ${WS}"
start=${SECONDS}
if ! (cd "${WS}" && colcon build --event-handlers console_direct- "$@" \
    --cmake-args "-DPython3_EXECUTABLE=${PY}" -DBUILD_TESTING=OFF \
    >"${WS}/colcon.log" 2>&1); then
    tail -n 80 "${WS}/colcon.log" >&2
    find "${WS}/log/latest_build" -name stderr.log -exec tail -n 40 {} + >&2 2>/dev/null || true
    fail "colcon build failed"
fi
echo "colcon_check.sh: built in $((SECONDS - start)) s"

INSTALL="${WS}/install/${PKG}"
SITE="$(cd "${INSTALL}" && "${PY}" -c 'import sys; print(f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages")')"
PY_PKG="${INSTALL}/${SITE}/${PKG}"

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
# The executables `ros2 run` and the launch files start.
for exe in feature_matcher_node geometry_node navigator_node fm-navigate; do
    [[ -x "${INSTALL}/lib/${PKG}/${exe}" ]] || fail "executable lib/${PKG}/${exe} not installed"
done
for d in config launch; do
    if [[ -d "${ROOT}/${d}" ]]; then
        [[ -d "${INSTALL}/share/${PKG}/${d}" ]] || fail "share/${PKG}/${d} not installed"
    fi
done

# Import the messages from the install space, as a node started by `ros2 run` would: source the
# workspace, drop the checkout from sys.path (the venv's editable .pth adds it) and load the
# typesupport. The wheels' bootstrapper re-execs Python with an LD_LIBRARY_PATH in random order,
# so that step is done here instead, with the install space first (the venv's lib/ may hold the
# same libraries from scripts/build_msgs.sh).
(
    set +u
    if [[ -f "${WS}/install/setup.bash" ]]; then
        # shellcheck disable=SC1091
        . "${WS}/install/setup.bash"
    else
        # shellcheck disable=SC1091
        COLCON_CURRENT_PREFIX="${WS}/install" . "${WS}/install/setup.sh"
    fi
    set -u
    libs="${INSTALL}/lib:${LD_LIBRARY_PATH:-}:${VIRTUAL_ENV}/lib"
    for d in "${VIRTUAL_ENV}/${SITE}"/ros_*.libs; do
        [[ -d "${d}" ]] && libs="${libs}:${d}"
    done
    cd /
    LD_LIBRARY_PATH="${libs}" _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 \
        FM_ROOT="${ROOT}" FM_INSTALL="${INSTALL}" FM_WS="${WS}" \
        "${PY}" - <<'EOF'
import os
import sys

root = os.path.realpath(os.environ["FM_ROOT"])
install = os.path.abspath(os.environ["FM_INSTALL"]) + os.sep
workspace = os.path.realpath(os.environ["FM_WS"]) + os.sep  # --symlink-install links into build/
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
    loaded = {line.split()[-1] for line in f if "feature_matching_ros" in line and "/" in line}
assert loaded, "no feature_matching_ros library mapped"
stray = sorted(p for p in loaded if not os.path.realpath(p).startswith(workspace))
assert not stray, f"libraries loaded from outside the workspace: {stray}"
print(f"colcon_check.sh: imported {msg.__file__}")
EOF
    "${INSTALL}/lib/${PKG}/fm-navigate" --help >/dev/null
) || fail "messages or executables do not work from the install space"

echo "colcon_check.sh: OK ($((SECONDS - start)) s)"
