"""Every op nnbuild knows, registered explicitly. Importing this package registers them all."""
from . import registry  # noqa: F401
from . import elementwise  # noqa: F401
from . import linalg  # noqa: F401
from . import conv  # noqa: F401
from . import pool  # noqa: F401
from . import normalization  # noqa: F401
from . import reduce  # noqa: F401
from . import shape_ops  # noqa: F401
from . import movement  # noqa: F401
from . import resize  # noqa: F401
from . import math_extra  # noqa: F401
from . import index  # noqa: F401
from . import loss  # noqa: F401
from . import quantize  # noqa: F401
from . import fused  # noqa: F401
from . import sampling  # noqa: F401
from . import training  # noqa: F401
