"""Retrain the shipped models, evaluate them and write the model card (``followaudit train``).

Kept apart from ``train`` (the fitting primitives) so that ``evaluate`` can use those primitives
without an import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb

from .. import __version__
from .card import render_card_md
from .evaluate import evaluate_all
from .model import CARD_JSON, CARD_VERSION, MODEL_DIR, SPECS
from .train import build_date, train_one


def train_models(
    out_dir: Path | None = None,
    data_dir: Path | None = None,
    *,
    models: tuple[str, ...] | None = None,
    evaluate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every model (or ``models``) into ``out_dir`` and write the model card (JSON + Markdown).

    With ``evaluate`` the full evaluation (``followaudit evaluate``) runs too and goes in the card.
    """
    out = out_dir or MODEL_DIR
    note = progress or (lambda _msg: None)
    card: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "followaudit_version": __version__,
        "lightgbm_version": lgb.__version__,
        "date": build_date(),
        "models": {},
    }
    existing = out / CARD_JSON
    if models and existing.exists():  # retraining some models keeps the others' card entries
        previous = json.loads(existing.read_text())
        card["models"] = {k: v for k, v in previous.get("models", {}).items() if k in SPECS}
        if "evaluation" in previous and not evaluate:
            card["evaluation"] = previous["evaluation"]
    for name in models or tuple(SPECS):
        note(f"training {name} model")
        card["models"][name] = train_one(name, out, data_dir)
    if evaluate:
        note("evaluating (cross-validation, leave-one-vendor-out, quantification)")
        result = evaluate_all(data_dir, models=tuple(card["models"]), card=card, progress=note)
        for name, figures in result["models"].items():
            card["models"][name]["evaluation"] = figures
            if "cv" in figures:
                card["models"][name]["cv"] = figures["cv"]
        for name, protocol in result.get("lodo", {}).items():
            # what audits use: the between-domain spread of Se/Sp and the estimator the protocol chose
            card["models"][name]["transfer"] = protocol["transfer"]
            card["models"][name]["default_estimator"] = protocol["default"]
        card["evaluation"] = result
    write_card(card, out)
    return card


def write_card(card: dict[str, Any], out_dir: Path) -> None:
    (out_dir / CARD_JSON).write_text(json.dumps(card, indent=1, sort_keys=False) + "\n")
    (out_dir / "model_card.md").write_text(render_card_md(card))
