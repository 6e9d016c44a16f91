"""JSON rendering of a Report (the documented, versioned schema)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from ..report.core import Report


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def render_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, default=_default, ensure_ascii=False)
