"""nnbuild: a neural-network compiler from ONNX to a native C project built with CMake.

    import nnbuild
    m = nnbuild.compile("model.onnx")       # generate + build through a cache, load in process
    outs = m.run({"data": x})               # numpy in, numpy out
"""
__version__ = "0.1.0"

from .api import build, compile, diff, generate, optimize, translate  # noqa: E402
from .errors import BuildError, ModelError, NNBuildError, UsageError  # noqa: E402
from .options import Options  # noqa: E402
from .runtime import CompiledModel  # noqa: E402

__all__ = ["compile", "build", "generate", "translate", "optimize", "Options", "CompiledModel",
           "diff", "NNBuildError", "ModelError", "UsageError", "BuildError", "__version__"]
