#!/usr/bin/env bash
# Build the ROS interfaces in msg/ and install them into the active virtual environment, whose
# ROS 2 comes from the PyPI wheels (requirements/ros-wheels.txt).
#
# Installs with CMAKE_INSTALL_PREFIX=$VIRTUAL_ENV and FM_INSTALL_PYTHON_PACKAGE=OFF: the libraries
# go to $VIRTUAL_ENV/lib (on the loader path set up by the wheels' bootstrapper) and only the
# generated msg/ subpackage and typesupport modules to site-packages/feature_matching_ros/, which
# the editable checkout's package picks up through pkgutil.extend_path.
#
# Out-of-source build in build/msgs/ (one per venv). Skipped when a stamp of the inputs matches and the
# generated module imports. The inputs are everything the install takes from the checkout: msg/,
# launch/ and config/ (installed to share/), package.xml, CMakeLists.txt and setup.py (whose console
# scripts become lib/feature_matching_ros/*); `build_msgs.sh --list-inputs` prints them.
# FM_FORCE_BUILD=1 rebuilds regardless.
set -euo pipefail

if [[ -z "${VIRTUAL_ENV:-}" || ! -x "${VIRTUAL_ENV}/bin/python" ]]; then
    echo "build_msgs.sh: no virtual environment is active (VIRTUAL_ENV is unset)." >&2
    echo "  Activate one first, e.g.: . .venv/bin/activate   (or run: make setup)" >&2
    exit 1
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# One build tree per venv (a Kilted and a Jazzy venv side by side): build/msgs for the default
# .venv, build/msgs-<venv name> for any other.
BUILD_DIR="${ROOT}/build/msgs"
if [[ "$(realpath -m "${VIRTUAL_ENV}")" != "$(realpath -m "${ROOT}/.venv")" ]]; then
    BUILD_DIR="${ROOT}/build/msgs-$(basename "${VIRTUAL_ENV}")"
fi
STAMP_FILE="${BUILD_DIR}/.inputs.sha256"
PY="${VIRTUAL_ENV}/bin/python"

if [[ ! -d "${VIRTUAL_ENV}/share/rosidl_default_generators" ]]; then
    echo "build_msgs.sh: ROS build tools missing from ${VIRTUAL_ENV}." >&2
    echo "  Install them: pip install -r ${ROOT}/requirements/ros-wheels.txt" >&2
    exit 1
fi

# Imports the generated classes and loads their C typesupport, as rclpy does on first use.
check_import() {
    (cd / && "${PY}" - <<'EOF'
import feature_matching_ros
from feature_matching_ros.msg import GeometryEstimate, MatchArray

for cls in (MatchArray, GeometryEstimate):
    cls.__class__.__import_type_support__()
    assert cls.__class__._TYPE_SUPPORT is not None, cls
print(feature_matching_ros.__file__)
EOF
    )
}

# The files of the checkout that the install copies or is generated from, relative to ROOT.
SHARED_DIRS=(msg launch config)
input_files() {
    (
        cd "${ROOT}"
        printf '%s\n' CMakeLists.txt package.xml setup.py cmake/drop_missing_include_dirs.cmake
        for d in "${SHARED_DIRS[@]}"; do
            if [[ -d "${d}" ]]; then
                find "${d}" -type f -not -path '*/__pycache__/*' -not -name '*.pyc'
            fi
        done
    ) | LC_ALL=C sort
}

inputs_hash() {
    (
        cd "${ROOT}"
        echo "venv=${VIRTUAL_ENV}"
        input_files | while IFS= read -r f; do
            sha256sum "${f}"
        done
    ) | sha256sum | cut -d' ' -f1
}

if [[ "${1:-}" == --list-inputs ]]; then
    input_files
    exit 0
fi

HASH="$(inputs_hash)"
if [[ "${FM_FORCE_BUILD:-0}" != 1 && -f "${STAMP_FILE}" && "$(cat "${STAMP_FILE}")" == "${HASH}" ]] \
    && check_import >/dev/null 2>&1; then
    echo "build_msgs.sh: messages up to date in ${VIRTUAL_ENV}"
    exit 0
fi

# A build tree configured for another venv would keep the old interpreter and prefix.
if [[ -f "${BUILD_DIR}/CMakeCache.txt" ]] \
    && ! grep -qxF "CMAKE_INSTALL_PREFIX:PATH=${VIRTUAL_ENV}" "${BUILD_DIR}/CMakeCache.txt"; then
    rm -rf "${BUILD_DIR}"
fi
mkdir -p "${BUILD_DIR}"
rm -f "${STAMP_FILE}"

GENERATOR=()
if command -v ninja >/dev/null 2>&1; then
    GENERATOR=(-G Ninja)
fi
if [[ -f "${BUILD_DIR}/CMakeCache.txt" ]]; then
    GENERATOR=()  # keep whatever generator the tree was configured with
fi

echo "build_msgs.sh: building ${ROOT}/msg into ${VIRTUAL_ENV} (build dir ${BUILD_DIR})"
export AMENT_PREFIX_PATH="${VIRTUAL_ENV}"
export CMAKE_PREFIX_PATH="${VIRTUAL_ENV}"
cmake -S "${ROOT}" -B "${BUILD_DIR}" "${GENERATOR[@]}" \
    -DPython3_EXECUTABLE="${PY}" \
    -DCMAKE_INSTALL_PREFIX="${VIRTUAL_ENV}" \
    -DFM_INSTALL_PYTHON_PACKAGE=OFF \
    -DBUILD_TESTING=OFF \
    >"${BUILD_DIR}/configure.log" 2>&1 \
    || { cat "${BUILD_DIR}/configure.log" >&2; echo "build_msgs.sh: cmake configure failed" >&2; exit 1; }
cmake --build "${BUILD_DIR}" --parallel "$(nproc 2>/dev/null || echo 2)" \
    >"${BUILD_DIR}/build.log" 2>&1 \
    || { tail -n 60 "${BUILD_DIR}/build.log" >&2; echo "build_msgs.sh: build failed" >&2; exit 1; }
# Installed launch/ and config/ files that the checkout no longer has must not stay behind.
for d in "${SHARED_DIRS[@]}"; do
    rm -rf "${VIRTUAL_ENV:?}/share/feature_matching_ros/${d}"
done
cmake --install "${BUILD_DIR}" >"${BUILD_DIR}/install.log" 2>&1 \
    || { tail -n 60 "${BUILD_DIR}/install.log" >&2; echo "build_msgs.sh: install failed" >&2; exit 1; }

if ! PKG_FILE="$(check_import)"; then
    echo "build_msgs.sh: built, but 'from feature_matching_ros.msg import MatchArray' fails" >&2
    exit 1
fi
if [[ "${PKG_FILE}" != "${ROOT}/feature_matching_ros/__init__.py" ]]; then
    echo "build_msgs.sh: feature_matching_ros is imported from ${PKG_FILE}, not from ${ROOT}" >&2
    echo "  (is the package installed editable: pip install -e ${ROOT} ?)" >&2
    exit 1
fi
echo "${HASH}" >"${STAMP_FILE}"
echo "build_msgs.sh: messages installed into ${VIRTUAL_ENV}"
