#!/usr/bin/env bash
# Builds ROS 2 cv_bridge (C++ library, boost.python module, Python package) from vision_opencv.tar.gz
# into the test venv, for tests only. Called by scripts/test_tools.sh with VENV, SRC, WORK and PY set.
#
# Nothing is installed on the system: the Debian packages cv_bridge needs (Boost.Python and the OpenCV
# core, imgproc and imgcodecs modules, with whatever runtime libraries they need that the system lacks)
# are fetched with `apt-get download`, unpacked with `dpkg -x` into ${VENV}/opt/debian, and cv_bridge is
# built against them with the wheel-installed ament_cmake. Its libraries carry an RPATH (not RUNPATH,
# so that it also covers their dependencies' dependencies) to the unpacked libraries. After the build
# only the shared libraries are kept there.
#
# The upstream sources are edited in a temporary copy, never in place: the rclcpp type adapter goes
# (no wheel provides rclcpp), ament_cmake_ros becomes ament_cmake_ros_core (the wheels lack its gtest and
# gmock parts), and rgb_colors.hpp includes opencv2/core.hpp instead of opencv2/opencv.hpp, which would
# need the headers of every OpenCV module.
#
# Exit status: 0 built and importable, 2 not possible here (no apt-get or dpkg), 1 failed.
set -euo pipefail

for var in VENV SRC WORK PY; do
    if [[ -z "${!var:-}" ]]; then
        echo "cv_bridge.sh: ${var} is not set (run scripts/test_tools.sh)" >&2
        exit 1
    fi
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${VENV}/opt/debian"
BUILD="${WORK}/cv_bridge"
LOG="${BUILD}.log"
# Debian's names; apt resolves the versioned packages (libboost-python1.74-dev, libopencv-core406, ...).
DEBIAN_PACKAGES=(libboost-python-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev)
# The OpenCV CMake config lives in libopencv-dev, whose dependencies are every OpenCV module: it is
# fetched alone.
OPENCV_CONFIG_PACKAGE=libopencv-dev

say() { echo "cv_bridge.sh: $*"; }

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    say "apt-get and dpkg are needed to fetch Debian's Boost.Python and OpenCV" >&2
    exit 2
fi

# A cv_bridge left from an earlier build must not stay behind if this one fails: its Python package
# would import with a boost module that cannot load.
remove_installed() {
    local site
    site="$("${PY}" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    rm -rf "${site}/cv_bridge" "${site}"/cv_bridge-*.egg-info "${VENV}/include/cv_bridge" \
        "${VENV}/share/cv_bridge" "${VENV}"/lib/libcv_bridge.so* "${PREFIX}"
    if [[ -d "${VENV}/share/ament_index/resource_index" ]]; then
        find "${VENV}/share/ament_index/resource_index" -name cv_bridge -type f -delete
    fi
}
fail() {
    say "$*" >&2
    remove_installed
    exit 1
}
[[ -f "${SRC}/vision_opencv.tar.gz" ]] || fail "${SRC}/vision_opencv.tar.gz is missing"
remove_installed
rm -rf "${BUILD}"
mkdir -p "${BUILD}/debs" "${PREFIX}"
: >"${LOG}"

# apt's own package lists where they are current enough to know the packages, else lists of our own.
apt_opts=(-o "APT::Sandbox::User=root")
if ! apt-cache show "${DEBIAN_PACKAGES[@]}" >/dev/null 2>&1; then
    say "apt's package lists do not know ${DEBIAN_PACKAGES[*]}: fetching lists into ${BUILD}/apt"
    mkdir -p "${BUILD}/apt/lists/partial" "${BUILD}/apt/cache/archives/partial"
    apt_opts+=(-o "Dir::State::Lists=${BUILD}/apt/lists" -o "Dir::Cache=${BUILD}/apt/cache")
    apt-get "${apt_opts[@]}" update >>"${LOG}" 2>&1 || fail "apt-get update failed (log: ${LOG})"
fi

# What an install would add to this system, without recommends and without architecture-independent
# packages (GDAL's and PROJ's data, MySQL's configuration: nothing a library loads).
simulated="$(apt-get "${apt_opts[@]}" install -s --no-install-recommends "${DEBIAN_PACKAGES[@]}" 2>>"${LOG}")" \
    || fail "apt cannot resolve ${DEBIAN_PACKAGES[*]} (log: ${LOG})"
mapfile -t wanted < <(awk '$1 == "Inst" && $0 !~ /\[all\]\)?$/ { print $2 }' <<<"${simulated}")
if ! dpkg-query -W -f='${Status}' "${OPENCV_CONFIG_PACKAGE}" 2>/dev/null | grep -q 'ok installed'; then
    wanted+=("${OPENCV_CONFIG_PACKAGE}")
fi
start=${SECONDS}
if ((${#wanted[@]})); then
    (cd "${BUILD}/debs" && apt-get "${apt_opts[@]}" download "${wanted[@]}") >>"${LOG}" 2>&1 \
        || fail "apt-get download of ${#wanted[@]} packages failed (log: ${LOG})"
fi
shopt -s nullglob
debs=("${BUILD}/debs"/*.deb)
shopt -u nullglob
size="$(du -cb "${debs[@]}" /dev/null | tail -n 1 | cut -f1)"
say "fetched ${#debs[@]} Debian packages ($((size / 1000000)) MB) in $((SECONDS - start)) s"
for deb in "${debs[@]}"; do
    dpkg -x "${deb}" "${PREFIX}" || fail "dpkg -x ${deb} failed"
done
rm -rf "${BUILD}/debs"

multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"
opencv_dir="${PREFIX}/usr/lib/${multiarch}/cmake/opencv4"
if [[ -f "${opencv_dir}/OpenCVModules-release.cmake" ]]; then
    # The config imports every OpenCV module and fails when any module's library is missing; only
    # core, imgproc and imgcodecs are here, and only they are linked.
    sed -i '/_cmake_import_check_files_for_/d' "${opencv_dir}/OpenCVModules-release.cmake"
else
    opencv_dir="/usr/lib/${multiarch}/cmake/opencv4"
fi
boost_dir="$(find "${PREFIX}/usr/lib/${multiarch}/cmake" "/usr/lib/${multiarch}/cmake" -maxdepth 1 \
    -name 'Boost-*' -type d 2>/dev/null | head -n 1)"
[[ -n "${boost_dir}" ]] || fail "no BoostConfig.cmake after unpacking (log: ${LOG})"
# Every directory of the prefix that holds a shared library (Debian puts some in usr/lib, BLAS and
# LAPACK in subdirectories reached through alternatives, which dpkg -x does not set up).
rpath="${VENV}/lib"
while IFS= read -r dir; do
    rpath+=";${dir}"
done < <(find "${PREFIX}" -name 'lib*.so*' \( -type f -o -type l \) -printf '%h\n' | LC_ALL=C sort -u)

tar -xzf "${SRC}/vision_opencv.tar.gz" -C "${BUILD}" --wildcards '*/cv_bridge/*'
source_dir="$(find "${BUILD}" -maxdepth 3 -type d -name cv_bridge -path '*/vision_opencv/*' | head -n 1)"
[[ -f "${source_dir}/CMakeLists.txt" ]] || fail "no cv_bridge/CMakeLists.txt in vision_opencv.tar.gz"
sed -i 's/^find_package(ament_cmake_ros REQUIRED)$/find_package(ament_cmake_ros_core REQUIRED)/;
    /^find_package(rclcpp REQUIRED)$/d; /^  rclcpp$/d' "${source_dir}/CMakeLists.txt"
sed -i '/cv_mat_sensor_msgs_image_type_adapter\.cpp/d; /rclcpp::rclcpp/d' "${source_dir}/src/CMakeLists.txt"
rm -f "${source_dir}/src/cv_mat_sensor_msgs_image_type_adapter.cpp" \
    "${source_dir}/include/cv_bridge/cv_mat_sensor_msgs_image_type_adapter.hpp"
sed -i 's|^#include <opencv2/opencv.hpp>$|#include <opencv2/core.hpp>|' \
    "${source_dir}/include/cv_bridge/rgb_colors.hpp"
if left="$(grep -rn -e rclcpp -e 'ament_cmake_ros ' -e 'opencv2/opencv.hpp' "${source_dir}" \
    --include=CMakeLists.txt --include='*.cpp' --include='*.hpp' --exclude-dir=test)"; then
    fail "the edits of upstream cv_bridge no longer apply (update scripts/test_tools/cv_bridge.sh):
${left}"
fi

generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
start=${SECONDS}
if ! {
    AMENT_PREFIX_PATH="${VENV}" CMAKE_PREFIX_PATH="${VENV}" cmake -S "${source_dir}" -B "${BUILD}/build" \
        "${generator[@]}" \
        -DCMAKE_PROJECT_INCLUDE="${HERE}/wheel_include_fix.cmake" \
        -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DPython3_EXECUTABLE="${PY}" -DCMAKE_INSTALL_PREFIX="${VENV}" \
        -DOpenCV_DIR="${opencv_dir}" -DBoost_DIR="${boost_dir}" -DBoost_NO_SYSTEM_PATHS=ON \
        -DCMAKE_INSTALL_RPATH="${rpath}" \
        -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags \
        -DCMAKE_MODULE_LINKER_FLAGS=-Wl,--disable-new-dtags &&
        cmake --build "${BUILD}/build" --parallel "$(nproc 2>/dev/null || echo 2)" &&
        cmake --install "${BUILD}/build"
} >>"${LOG}" 2>&1; then
    tail -n 40 "${LOG}" >&2
    fail "cv_bridge build failed (log: ${LOG})"
fi
say "built and installed in $((SECONDS - start)) s"

# Only the shared libraries are needed from now on.
rm -rf "${PREFIX:?}/usr/include" "${PREFIX:?}/usr/share" "${PREFIX:?}/usr/bin" "${PREFIX:?}/etc"
find "${PREFIX}" \( -name '*.a' -o -name cmake -o -name pkgconfig \) -prune -exec rm -rf {} +

# The boost module must load (cv_bridge/__init__.py hides an ImportError) beside pip's cv2, and the
# conversions must round-trip.
if ! (cd / && AMENT_PREFIX_PATH="${VENV}" "${PY}" - <<'EOF'
import cv2
import numpy as np
from ament_index_python.packages import get_package_prefix
from cv_bridge import CvBridge
from cv_bridge.boost.cv_bridge_boost import cvtColor2, getCvType

get_package_prefix("cv_bridge")
assert getCvType("rgb8") == cv2.CV_8UC3, getCvType("rgb8")
bridge = CvBridge()
pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
msg = bridge.cv2_to_imgmsg(pixels, encoding="rgb8")
np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, desired_encoding="passthrough"), pixels)
np.testing.assert_array_equal(bridge.imgmsg_to_cv2(msg, desired_encoding="bgr8"), pixels[..., ::-1])
np.testing.assert_array_equal(cvtColor2(pixels, "rgb8", "mono8"), cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY))
EOF
) >>"${LOG}" 2>&1; then
    tail -n 20 "${LOG}" >&2
    fail "cv_bridge installed, but it does not import or convert (log: ${LOG})"
fi
say "cv_bridge installed into ${VENV} ($(du -sm "${PREFIX}" | cut -f1) MB of Debian libraries in ${PREFIX})"
