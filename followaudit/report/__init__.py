"""The Report: built once per audit, rendered many ways (``followaudit.render``)."""

from .core import SCHEMA_VERSION, Report

__all__ = ["SCHEMA_VERSION", "Report"]
