"""Lowering and code generation: IR graph -> the files of a CMake project."""
from .project import generate_project, GeneratedProject

__all__ = ["generate_project", "GeneratedProject"]
