"""Build driver (CMake + Ninja from PyPI), safe output folders, and the build cache."""
