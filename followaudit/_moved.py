"""Old module paths (before the package-per-stage layout) keep importing for one release.

``import followaudit.ingest`` returns ``followaudit.sources.ingest`` with a DeprecationWarning, so
scripts written against 0.1 keep working while they move to the new paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "followaudit.store_collect": "followaudit.store.collection",
    "followaudit.store_reach": "followaudit.store.reach_tables",
    "followaudit.prevalence": "followaudit.estimate.corrected",
    "followaudit.bursts_audit": "followaudit.bursts.attach",
    "followaudit.validation": "followaudit.bursts",
    "followaudit.validation.bursts_harness": "followaudit.bursts.harness",
    "followaudit.engagement": "followaudit.reach.engagement",
    "followaudit.engagement_sections": "followaudit.reach.sections",
    "followaudit.likers": "followaudit.reach.likers",
    "followaudit.growth": "followaudit.reach.growth",
    "followaudit.views": "followaudit.reach.views",
    "followaudit.comparison": "followaudit.reach.comparison",
    "followaudit.features": "followaudit.classify.features",
    "followaudit.ingest": "followaudit.sources.ingest",
    "followaudit.collect": "followaudit.sources.collect",
    "followaudit.synth": "followaudit.sources.synth",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001, ANN201
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):  # noqa: ANN001, ANN201
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:  # noqa: ANN001
        pass  # the module is the new one, already executed; the import system files it under the old name


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
