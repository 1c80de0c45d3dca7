"""The errors a user can see. Each prints as one line; the CLI maps them to exit codes."""


class NNBuildError(Exception):
    """Base class: a problem with the user's input or environment, reported in one line."""
    exit_code = 2


class ModelError(NNBuildError):
    """The model cannot be translated: bad file, unknown op, unbound shape, bad attribute."""


class UsageError(NNBuildError):
    """The command line or API call is wrong (bad option, output folder not ours...)."""


class BuildError(NNBuildError):
    """The C compiler, CMake or the built program failed."""
    exit_code = 1
