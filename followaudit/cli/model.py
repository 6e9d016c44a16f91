"""``followaudit train`` and ``followaudit evaluate``: rebuild and measure the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .app import cli, format_option, say

data_option = click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding cresci-2015/ and instafake/ (default: $FOLLOWAUDIT_TRAINING_DATA or ../shared/data).",
)


@cli.command()
@data_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the model files and card go (default: the package's data/models).")
@click.option("--model", "models", multiple=True, type=click.Choice(["twitter", "instagram", "crossplatform"]),
              help="Train only this model (repeatable; default: all).")
@click.option("--skip-evaluation", is_flag=True, help="Do not run the evaluation for the model card (faster).")
def train(data_dir: Path | None, out_dir: Path | None, models: tuple[str, ...], skip_evaluation: bool) -> None:
    """Rebuild the detection models from the labelled data (deterministic: same files every time)."""
    from ..classify.model import MODEL_DIR
    from ..classify.retrain import train_models

    target = out_dir or MODEL_DIR
    card = train_models(target, data_dir, models=models or None, evaluate=not skip_evaluation, progress=say)
    for name, m in card["models"].items():
        er = m["error_rates"]
        say(f"{name}: {m['rows']:,} accounts, sensitivity {er['sensitivity']:.3f}, specificity {er['specificity']:.3f} -> {target / m['file']}")
    say(f"model card: {target / 'model_card.md'}")


@cli.command()
@data_option
@format_option("text", "json")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JSON result to this file.")
@click.option("--folds", type=click.IntRange(2, 20), default=10, show_default=True, help="Cross-validation folds.")
@click.option("--replicates", type=click.IntRange(2, 1000), default=50, show_default=True,
              help="Simulated audits per prevalence in the quantification harness.")
@click.option("--model", "models", multiple=True, type=click.Choice(["twitter", "instagram", "crossplatform"]),
              help="Evaluate only this model (repeatable; default: all).")
def evaluate(data_dir: Path | None, fmt: str, output: Path | None, folds: int, replicates: int, models: tuple[str, ...]) -> None:
    """Measure the models: cross-validation, leave-one-vendor-out, fake-share error and coverage."""
    from ..classify.card import evaluation_text, target_lines
    from ..classify.evaluate import evaluate_all

    result = evaluate_all(data_dir, models=models or None, folds_k=folds, replicates=replicates, progress=say)
    text = json.dumps(result, indent=1)
    if output:
        output.write_text(text + "\n")
        say(f"wrote {output}")
    if fmt == "json":
        click.echo(text)
    else:
        click.echo(evaluation_text(result))
        click.echo("\n".join(target_lines(result)))
