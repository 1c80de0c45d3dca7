# For checkouts (editable installs) only; see nnbuildConfig.cmake beside this file.
include("${CMAKE_CURRENT_LIST_DIR}/../cmake/nnbuildConfigVersion.cmake")
