# For checkouts (editable installs) only: scikit-build-core's `cmake.root` entry point names the
# nnbuild package folder, where a wheel holds cmake/nnbuildConfig.cmake; a checkout keeps that
# folder beside this one. Not packaged into wheels.
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/nnbuildConfig.cmake")
