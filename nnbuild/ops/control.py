"""Control flow, sequences and optionals. The frontend resolves them while it translates
(``nnbuild/frontend/subgraphs.py``: branches inlined, loops unrolled, sequences and optionals
as compile-time lists), so no node of these ops reaches the IR; they are registered so that
`nnbuild ops` lists them with the oldest opset each accepts."""
from __future__ import annotations

from .registry import Op, register


class ResolvedByFrontend(Op):
    """Never in the IR: the frontend replaces the node by the nodes it stands for."""
    def infer(self, ctx):
        raise ctx.fail("is resolved while the model is translated and cannot appear in the IR")


for _op, _since in [("If", 1), ("Loop", 1), ("Scan", 8),
                    ("SequenceEmpty", 11), ("SequenceConstruct", 11), ("SequenceInsert", 11),
                    ("SequenceErase", 11), ("SequenceAt", 11), ("SequenceLength", 11),
                    ("ConcatFromSequence", 11), ("SplitToSequence", 11), ("SequenceMap", 17),
                    ("Optional", 15), ("OptionalHasElement", 15), ("OptionalGetElement", 15)]:
    register(_op, since=_since)(ResolvedByFrontend)
