"""Where the data files shipped with nnbuild live (templates; in a wheel, inside the package)."""
from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def templates_dir() -> str:
    """The templates folder: ``nnbuild/templates`` when installed, ``templates/`` in a checkout."""
    for candidate in (os.path.join(_HERE, "templates"), os.path.join(_HERE, "..", "templates")):
        if os.path.isdir(os.path.join(candidate, "project")):
            return os.path.normpath(candidate)
    raise RuntimeError("nnbuild templates not found; is the installation complete?")
