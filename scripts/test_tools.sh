#!/usr/bin/env bash
# Test set-up: install the ROS 2 tools that have no PyPI wheel (launch, launch_ros, ros2cli with
# ros2 launch/param/topic/pkg, rosidl_runtime_py, composition_interfaces, message_filters,
# launch_testing) into the test venv, from upstream source archives.
#
# The archives come from FM_ROS2_SRC (default: ../shared/ros2_src beside the repository). Missing
# archives are a warning (the tests that need the tools then skip), under CI=true a failure.
# cv_bridge is built by scripts/test_tools/cv_bridge.sh against Debian's Boost.Python and OpenCV, fetched
# with apt-get download and unpacked into the venv (nothing is installed on the system); where that is not
# possible it is a warning (the cv_bridge tests skip), under CI=true a failure.
# Idempotent: a stamp of the archives, this script and the venv makes a second run return at once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(cd "${ROOT}" && realpath -m "${VENV:-.venv}")"
SRC="$(cd "${ROOT}" && realpath -m "${FM_ROS2_SRC:-../shared/ros2_src}")"
WORK="${ROOT}/build/test_tools"
STAMP="${VENV}/.fm-test-tools.sha256"
PY="${VENV}/bin/python"
ARCHIVES=(launch launch_ros ros2cli rosidl_runtime_py rcl_interfaces message_filters)
# pip-installable packages, as <archive>/<path inside it>
PURE_PYTHON=(
    launch/launch launch/launch_xml launch/launch_yaml launch/launch_testing
    launch_ros/launch_ros launch_ros/ros2launch launch_ros/launch_testing_ros
    rosidl_runtime_py
    ros2cli/ros2cli ros2cli/ros2pkg ros2cli/ros2node ros2cli/ros2topic ros2cli/ros2service
    ros2cli/ros2param ros2cli/ros2run ros2cli/ros2interface
)
PYPI_DEPS=(osrf-pycommon psutil argcomplete)

say() { echo "test_tools.sh: $*"; }

if [[ ! -x "${PY}" ]]; then
    say "no venv at ${VENV}; run make setup first" >&2
    exit 1
fi
missing=()
for name in "${ARCHIVES[@]}"; do
    [[ -f "${SRC}/${name}.tar.gz" ]] || missing+=("${SRC}/${name}.tar.gz")
done
if ((${#missing[@]})); then
    say "ROS 2 tool sources missing: ${missing[*]} (set FM_ROS2_SRC)" >&2
    if [[ "${CI:-}" == true ]]; then
        exit 1
    fi
    say "continuing without them: tests of launch files and ROS 2 tools will skip" >&2
    exit 0
fi

can_build_cv_bridge() {
    command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 \
        && [[ -f "${SRC}/vision_opencv.tar.gz" ]]
}

want="$(
    cd "${SRC}"
    sha256sum "${ARCHIVES[@]/%/.tar.gz}" vision_opencv.tar.gz 2>/dev/null || true
    sha256sum "${ROOT}/scripts/test_tools.sh" "${ROOT}"/scripts/test_tools/* "${ROOT}/cmake/drop_missing_include_dirs.cmake"
    echo "venv=${VENV} cv_bridge=$(can_build_cv_bridge && echo yes || echo no)"
)"
want="$(sha256sum <<<"${want}" | cut -d' ' -f1)"
if [[ "$(cat "${STAMP}" 2>/dev/null)" == "${want}" ]]; then
    say "ROS 2 test tools up to date in ${VENV}"
    exit 0
fi
rm -f "${STAMP}"
rm -rf "${WORK}"
mkdir -p "${WORK}/src"
for name in "${ARCHIVES[@]}"; do
    tar -xzf "${SRC}/${name}.tar.gz" -C "${WORK}/src"
done

say "installing ${#PURE_PYTHON[@]} pure-Python packages into ${VENV}"
"${PY}" -m pip install -q "${PYPI_DEPS[@]}"
"${PY}" -m pip install -q --no-deps --no-build-isolation "${PURE_PYTHON[@]/#/${WORK}/src/}"

site="$("${PY}" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# Registers a package in the venv's ament index, as an ament install would.
register() {
    mkdir -p "${VENV}/share/ament_index/resource_index/packages" "${VENV}/share/$1"
    : >"${VENV}/share/ament_index/resource_index/packages/$1"
    cp "$2/package.xml" "${VENV}/share/$1/package.xml"
}

say "installing message_filters (Python module only)"
rm -rf "${site}/message_filters"
cp -r "${WORK}/src/message_filters/src/message_filters" "${site}/message_filters"
register message_filters "${WORK}/src/message_filters"

say "building composition_interfaces"
build="${WORK}/composition_interfaces"
export AMENT_PREFIX_PATH="${VENV}" CMAKE_PREFIX_PATH="${VENV}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if ! {
    cmake -S "${WORK}/src/rcl_interfaces/composition_interfaces" -B "${build}" "${generator[@]}" \
        -DCMAKE_PROJECT_INCLUDE="${ROOT}/scripts/test_tools/wheel_include_fix.cmake" \
        -DPython3_EXECUTABLE="${PY}" -DCMAKE_INSTALL_PREFIX="${VENV}" -DBUILD_TESTING=OFF &&
        cmake --build "${build}" --parallel "$(nproc 2>/dev/null || echo 2)" &&
        cmake --install "${build}"
} >"${WORK}/composition_interfaces.log" 2>&1; then
    tail -n 40 "${WORK}/composition_interfaces.log" >&2
    say "composition_interfaces build failed (log: ${WORK}/composition_interfaces.log)" >&2
    exit 1
fi

# A cv_bridge that could not be built leaves no stamp, so the next run tries again.
cv_bridge_ok=true
if can_build_cv_bridge; then
    say "building cv_bridge against Debian's Boost.Python and OpenCV (unpacked into ${VENV}/opt/debian)"
    if ! VENV="${VENV}" SRC="${SRC}" WORK="${WORK}" PY="${PY}" bash "${ROOT}/scripts/test_tools/cv_bridge.sh"
    then
        if [[ "${CI:-}" == true ]]; then
            say "cv_bridge build failed" >&2
            exit 1
        fi
        say "cv_bridge build failed: the cv_bridge tests skip, the next run tries again" >&2
        cv_bridge_ok=false
    fi
else
    if [[ "${CI:-}" == true ]]; then
        say "cannot build cv_bridge: it needs apt-get, dpkg and ${SRC}/vision_opencv.tar.gz" >&2
        exit 1
    fi
    say "cv_bridge not built: it needs apt-get, dpkg and ${SRC}/vision_opencv.tar.gz" \
        "(the cv_bridge tests skip)" >&2
fi

(cd / && AMENT_PREFIX_PATH="${VENV}" "${PY}" - <<'EOF'
import composition_interfaces.srv  # noqa: F401
import launch_ros  # noqa: F401
import message_filters  # noqa: F401
import ros2cli  # noqa: F401
from ament_index_python.packages import get_package_prefix

for name in ("launch", "launch_ros", "ros2launch", "message_filters"):
    get_package_prefix(name)
EOF
) || { say "installed, but the tools do not import" >&2; exit 1; }
"${VENV}/bin/ros2" pkg prefix composition_interfaces >/dev/null
if [[ "${cv_bridge_ok}" == true ]]; then
    echo "${want}" >"${STAMP}"
fi
say "ROS 2 test tools installed into ${VENV}"
