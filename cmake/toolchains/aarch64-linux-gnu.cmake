# Toolchain file: cross-compile for 64-bit ARM Linux with Debian's gcc-aarch64-linux-gnu.
#
#   cmake -S . -B build-arm64 -G Ninja \
#     -DCMAKE_TOOLCHAIN_FILE="$(nnbuild --cmake-dir)/toolchains/aarch64-linux-gnu.cmake"
#
# The generator (nnbuild, Python) runs on the build machine; the library and apps are built
# for aarch64. `TARGET host` in nn_add_model() then means the aarch64 machine. Run the result
# with `qemu-aarch64 -L /usr/aarch64-linux-gnu ./app` (Debian's qemu-user), or set
# CMAKE_CROSSCOMPILING_EMULATOR as below so add_test() and `cmake -E` users do it for you.
# Override the compiler prefix with -DNNBUILD_CROSS_PREFIX=... (default aarch64-linux-gnu-).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

if(NOT NNBUILD_CROSS_PREFIX)
  set(NNBUILD_CROSS_PREFIX aarch64-linux-gnu-)
endif()
set(CMAKE_C_COMPILER "${NNBUILD_CROSS_PREFIX}gcc")
set(CMAKE_CXX_COMPILER "${NNBUILD_CROSS_PREFIX}g++")
set(CMAKE_ASM_COMPILER "${NNBUILD_CROSS_PREFIX}gcc")

set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)   # nnbuild's own package lives on the build machine

find_program(NNBUILD_QEMU_AARCH64 qemu-aarch64)
if(NNBUILD_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${NNBUILD_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
endif()
