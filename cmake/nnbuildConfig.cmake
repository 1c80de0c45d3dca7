# nnbuildConfig.cmake: nnbuild's CMake package.
#
# Purpose
#   Makes nn_add_model() and nn_add_model_executable() available (see nnbuild.cmake beside
#   this file), so that compiling a neural network becomes a normal step of a CMake build:
#
#     find_package(nnbuild CONFIG REQUIRED)
#     nn_add_model(classifier MODEL models/classifier.onnx)
#     target_link_libraries(app PRIVATE classifier)
#
# How CMake finds this file
#   It ships inside the nnbuild Python wheel (nnbuild/cmake/). `nnbuild --cmake-dir` prints the
#   folder: plain CMake users pass -Dnnbuild_ROOT="$(nnbuild --cmake-dir)" (or add it to
#   CMAKE_PREFIX_PATH); scikit-build-core finds it with no flags through nnbuild's `cmake.root`
#   entry point.
#
# The generator's Python
#   Models are generated at build time by `<python> -m nnbuild generate`. The Python is the
#   cache variable NNBUILD_PYTHON when set (it must import nnbuild), else the first of
#   Python3_EXECUTABLE, Python_EXECUTABLE, $VIRTUAL_ENV/bin/python, python3, python that
#   imports nnbuild. None found is a configure-time error with REQUIRED; without it,
#   nnbuild_FOUND is FALSE (the generated Python packages then build their vendored sources).
#
# Languages
#   The generated libraries are C11 with an assembler file for the weights: finding the package
#   enables C and ASM (at file scope, as enable_language() requires) in a project that lacks them.
#
# Result variables
#   nnbuild_FOUND, nnbuild_VERSION, NNBUILD_PYTHON (cache), NNBUILD_TEMPLATES_DIR.
include_guard(GLOBAL)
cmake_minimum_required(VERSION 3.20)

include("${CMAKE_CURRENT_LIST_DIR}/nnbuild.cmake")
_nnbuild_find_python()
if(DEFINED _nnbuild_not_found)
  set(nnbuild_FOUND FALSE)
  set(nnbuild_NOT_FOUND_MESSAGE "${_nnbuild_not_found}")
  unset(_nnbuild_not_found)
  return()
endif()
get_property(_nnbuild_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
foreach(_nnbuild_language IN ITEMS C ASM)
  if(NOT _nnbuild_language IN_LIST _nnbuild_languages)
    enable_language(${_nnbuild_language})
  endif()
endforeach()
unset(_nnbuild_languages)
unset(_nnbuild_language)
set(nnbuild_FOUND TRUE)
