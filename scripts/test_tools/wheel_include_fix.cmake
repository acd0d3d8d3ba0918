# Injected with -DCMAKE_PROJECT_INCLUDE into an upstream interface package built against the ROS 2
# PyPI wheels: their imported targets name the include directories of the machine that built the
# wheels. At the end of the top-level CMakeLists, drop the absolute ones that do not exist here.
function(_fm_drop_missing_include_dirs)
  get_directory_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    foreach(_dir IN LISTS _dirs)
      if(NOT IS_ABSOLUTE "${_dir}" OR _dir MATCHES "\\$<" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      endif()
    endforeach()
    set_property(TARGET ${_target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
  endforeach()
endfunction()

if(CMAKE_CURRENT_SOURCE_DIR STREQUAL CMAKE_SOURCE_DIR)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _fm_drop_missing_include_dirs)
endif()
