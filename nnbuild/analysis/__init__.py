"""Analyses over the IR: FLOPs, parameter counts, memory, the inspect report."""
