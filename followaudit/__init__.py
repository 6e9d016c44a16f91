"""followaudit: audit who follows an account — fake, inactive and real shares with intervals."""

from typing import Any

from . import _moved

_moved.install()  # old module paths (0.1) keep importing, with a DeprecationWarning

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # The version is looked up on first use: importlib.metadata costs ~25 ms at every CLI start.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("followaudit")
        except PackageNotFoundError:  # running from a source tree that was not installed
            value = "0.0.0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'followaudit' has no attribute {name!r}")
