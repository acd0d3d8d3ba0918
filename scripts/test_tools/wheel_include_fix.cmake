# Injected with -DCMAKE_PROJECT_INCLUDE into an upstream interface package built against the ROS 2
# PyPI wheels: at the end of its top-level CMakeLists, drop the include directories of the wheels'
# build machine from its imported targets (the project's own fix, cmake/drop_missing_include_dirs.cmake).
include("${CMAKE_CURRENT_LIST_DIR}/../../cmake/drop_missing_include_dirs.cmake")

if(CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL fm_drop_missing_include_dirs "${CMAKE_SOURCE_DIR}")
endif()
