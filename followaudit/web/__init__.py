"""The local web app (``followaudit serve``): FastAPI + Jinja2, read-only, a ``.json`` twin per page."""

from .app import create_app

__all__ = ["create_app"]
