"""The pipelines, one plain list per optimization level."""
from __future__ import annotations

from ..errors import UsageError
from .eliminate_common_subexpressions import eliminate_common_subexpressions
from .eliminate_dead_code import eliminate_dead_code
from .fold_batchnorm import fold_batchnorm
from .fold_constants import fold_constants
from .fold_scale_shift import fold_scale_shift
from .fuse_elementwise import fuse_elementwise
from .fuse_epilogue import fuse_epilogue
from .recognize_attention import recognize_attention
from .recognize_gelu import recognize_gelu
from .recognize_layernorm import recognize_layernorm
from .recognize_softmax import recognize_softmax
from .remove_identity import remove_identity
from .simplify_algebra import simplify_algebra
from .select_conv_algorithm import select_conv_algorithm
from .sink_transposes import sink_transposes

PIPELINES = {
    0: [],
    1: [fold_constants, remove_identity, eliminate_dead_code],
    2: [fold_constants, remove_identity, simplify_algebra, sink_transposes, fold_batchnorm,
        fold_scale_shift, fold_constants, eliminate_common_subexpressions, eliminate_dead_code,
        recognize_layernorm, recognize_softmax, recognize_attention, recognize_gelu,
        fuse_epilogue, fuse_elementwise, select_conv_algorithm],
}

ALL_PASSES = {p.name: p for level in PIPELINES.values() for p in level}


def pipeline(level: int) -> list:
    if level not in PIPELINES:
        raise UsageError(f"-O{level}: optimization level must be one of "
                         f"{', '.join(str(k) for k in PIPELINES)}")
    return list(PIPELINES[level])
