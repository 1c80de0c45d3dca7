"""Runs nnbuild's command line inside a Bazel action, from the copy of nnbuild that the action
declares as inputs (PYTHONPATH names it), never from this script's folder or the working dir."""
import sys

sys.path.pop(0)                      # this script's own folder
from nnbuild.cli import main         # noqa: E402

raise SystemExit(main())
