"""Every op nnbuild knows, registered explicitly. Importing this package registers them all."""
from . import registry  # noqa: F401
from . import elementwise  # noqa: F401
