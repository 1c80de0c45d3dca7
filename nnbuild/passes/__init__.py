"""Graph -> graph passes, the pass manager and the per-level pipelines."""
from .manager import Pass, PassManager, rewrite_pass, Rule
from .pipelines import pipeline, PIPELINES, ALL_PASSES

__all__ = ["Pass", "PassManager", "rewrite_pass", "Rule", "pipeline", "PIPELINES", "ALL_PASSES"]
