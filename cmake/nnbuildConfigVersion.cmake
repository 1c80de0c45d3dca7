# nnbuildConfigVersion.cmake: the version of this nnbuild CMake package, read from the Python
# package's nnbuild/__init__.py (so it cannot drift from the wheel's version). Compatible when
# the requested version has the same major number and is not newer (SameMajorVersion).
foreach(_nnbuild_init IN ITEMS "${CMAKE_CURRENT_LIST_DIR}/../__init__.py"
                               "${CMAKE_CURRENT_LIST_DIR}/../nnbuild/__init__.py")
  if(EXISTS "${_nnbuild_init}")
    file(STRINGS "${_nnbuild_init}" _nnbuild_line REGEX "^__version__ = ")
    string(REGEX REPLACE "^__version__ = \"([^\"]*)\".*" "\\1" PACKAGE_VERSION "${_nnbuild_line}")
    break()
  endif()
endforeach()
unset(_nnbuild_init)
unset(_nnbuild_line)

if(NOT PACKAGE_VERSION)
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
elseif(PACKAGE_FIND_VERSION)
  string(REGEX MATCH "^[0-9]+" _nnbuild_major "${PACKAGE_VERSION}")
  if(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION
     OR NOT _nnbuild_major STREQUAL "${PACKAGE_FIND_VERSION_MAJOR}")
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
    if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
      set(PACKAGE_VERSION_EXACT TRUE)
    endif()
  endif()
  unset(_nnbuild_major)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
