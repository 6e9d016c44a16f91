"""followaudit: audit who follows an account — fake, inactive and real shares with intervals."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("followaudit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

from . import _moved

_moved.install()  # old module paths (0.1) keep importing, with a DeprecationWarning

__all__ = ["__version__"]
