"""Frontends: ONNX model -> IR graph."""
from .onnx_import import load_model, translate

__all__ = ["load_model", "translate"]
