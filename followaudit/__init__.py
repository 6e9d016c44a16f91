"""followaudit: audit who follows an account — fake, inactive and real shares with intervals."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("followaudit")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
