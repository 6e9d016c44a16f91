"""The model card in Markdown, and the text form of ``followaudit evaluate``, from the card JSON."""

from __future__ import annotations

from typing import Any

from .model import AGE_FEATURES

TARGETS = {
    "twitter_cv_mcc": 0.98,
    "twitter_cv_f1": 0.99,
    "lovo_recall": {"FSF": 0.99, "INT": 0.95, "TWT": 0.90},
    "lovo_specificity": 0.98,
    "instagram_cv_f1": 0.93,
    "quantification_mae": 0.02,
    "quantification_coverage": 0.93,
}


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _metrics_row(name: str, m: dict[str, Any]) -> str:
    return (
        f"| {name} | {m['n']:,} ({m['fakes']:,} fake) | {_f(m['accuracy'])} | {_f(m['precision'])} | "
        f"{_f(m['recall'])} | {_f(m['f1'])} | {_f(m['mcc'])} | {_f(m['auc'])} |"
    )


def evaluation_text(result: dict[str, Any]) -> str:
    """The evaluation as Markdown tables (also what ``followaudit evaluate`` prints)."""
    lines = ["### Cross-validation (stratified, seeded; thresholds set inside each training part)", ""]
    lines += ["| model | rows | accuracy | precision | recall | F1 | MCC | AUC |", "|---|---|---|---|---|---|---|---|"]
    for name, fig in result.get("models", {}).items():
        if "cv" in fig:
            lines.append(_metrics_row(f"{name} (model)", fig["cv"]))
        for src, m in fig.get("cv_by_source", {}).items():
            lines.append(_metrics_row(f"{name} on {src}", m))
    for name, fig in result.get("rules", {}).items():
        lines.append(_metrics_row(f"{name} data, rule baselines", fig["cv"]))
    tw = result.get("models", {}).get("twitter", {})
    for key, title in (("lovo", "with all features"), ("lovo_no_age", "without account-age features")):
        if key in tw:
            lines += ["", f"### Leave-one-vendor-out on Cresci-15, {title}", "",
                      "| unseen vendor | fake recall | human specificity | AUC |", "|---|---|---|---|"]
            for vendor, v in tw[key].items():
                lines.append(f"| {vendor} ({v['fakes']:,} fakes) | {_f(v['recall'])} | {_f(v['specificity'])} | {_f(v['auc'])} |")
    q = result.get("quantification")
    if q:
        lines += ["", f"### Fake-share estimation ({q['model']} model; audits of {q['n']:,} followers, "
                  f"{q['replicates']} per prevalence; {q['confidence']:.0%} intervals)", "",
                  "| estimator | mean absolute error | interval coverage |", "|---|---|---|"]
        for name, e in q["estimators"].items():
            star = " (default)" if name == q["estimator"] else ""
            lines.append(f"| {name.replace('_', ' ')}{star} | {100 * e['mae']:.2f} points | {_f(e['coverage'])} |")
        lines += ["", "| true fake share | " + " | ".join(n.replace("_", " ") for n in q["estimators"]) + " |",
                  "|---|" + "---|" * len(q["estimators"])]
        for row in q["by_prevalence"]:
            cells = [f"{100 * row['estimators'][n]['mae']:.2f} pt / {row['estimators'][n]['coverage']:.2f}" for n in q["estimators"]]
            lines.append(f"| {row['prevalence']:.0%} | " + " | ".join(cells) + " |")
        lines.append("")
        lines.append("Cells: mean absolute error / share of 95% intervals holding the true share.")
    return "\n".join(lines) + "\n"


def render_card_md(card: dict[str, Any]) -> str:
    """``model_card.md``: what the models are, what they were trained on, how well they do."""
    out = [
        "# followaudit model card",
        "",
        f"Built {card['date']} by followaudit {card['followaudit_version']} with LightGBM {card['lightgbm_version']}; "
        "`followaudit train` rebuilds these files bit for bit, `followaudit evaluate` re-measures every figure.",
        "",
        "## Models",
        "",
    ]
    for name, m in card["models"].items():
        er = m["error_rates"]
        out += [
            f"### `{name}` ({m['file']})",
            "",
            f"- Training data: {', '.join(m['training_data'])} — {m['rows']:,} accounts, {m['fakes']:,} fake; "
            f"SHA-256 of the source files `{m['training_sha256'][:16]}…`",
            f"- Features ({len(m['features'])}): {', '.join(m['features'])}",
            f"- LightGBM: {m['num_rounds']} trees, {m['params']['num_leaves']} leaves, learning rate "
            f"{m['params']['learning_rate']}, feature fraction {m['params'].get('feature_fraction', 1.0)}, "
            f"bagging {m['params'].get('bagging_fraction', 1.0)}, monotone constraints "
            f"{ {f: c for f, c in zip(m['features'], m['params']['monotone_constraints'], strict=True) if c} }, seed {m['params']['seed']}",
            f"- Calibration: {m['calibration']['method']} ({len(m['calibration']['x'])} knots)",
            f"- Threshold: fake when the calibrated probability ≥ {m['threshold']['probability']:.3f} "
            f"(raw score {m['threshold']['raw']:.4f}; policy: {m['threshold']['policy']}"
            + (f", target specificity {m['threshold']['target_specificity']}" if m['threshold']['target_specificity'] else "")
            + ")",
            f"- Cross-validated error at that threshold (used by the prevalence correction): sensitivity "
            f"{er['sensitivity']:.4f} ({er['tp']:,}/{er['tp'] + er['fn']:,}), specificity {er['specificity']:.4f} "
            f"({er['tn']:,}/{er['tn'] + er['fp']:,})",
            "- Transfer: " + ("measured on its own platform's data" if m["transfer_measured"] else
                              "used for Bluesky, Mastodon and other imports, where it is **unmeasured**: there is no labelled data for them"),
            "",
        ]
    ev = card.get("evaluation")
    if ev:
        out += ["## Evaluation", "", evaluation_text(ev)]
        out += ["## Targets", "", *target_lines(ev), ""]
    out += [
        "## Caveats and leakage",
        "",
        "- Only fields of one profile object are used (counts, dates, profile completeness, handle and name shape). "
        "`dataset`, `source_file` and the crawl time `updated` are never features. Account age is "
        "`updated − created_at` in days: the crawl time differs per Cresci group by up to 1.6 hours, "
        "which cannot be recovered from an age in days of accounts created at arbitrary seconds.",
        f"- The FSF accounts were all created between 2013-01-25 and 2013-02-13, so any feature using dates "
        f"({', '.join(sorted(AGE_FEATURES))}) separates them trivially; the leave-one-vendor-out figures are also "
        "given without those features.",
        "- FSF and TWT are 59% and 57% random subsets of the published groups (the BAS sample).",
        "- Monotone constraints (more followers, posts, likes, lists, a bio, a location, a website or an avatar can "
        "only lower the fake score; a higher following/followers ratio or a longer consonant run in the handle can only "
        "raise it) keep the model from learning vendor quirks such as 'fakes write bios', which is what lets it "
        "catch a vendor it never saw.",
        "- Instagram: InstaFake is anonymised (no names, dates or handles), so the Instagram model sees counts, "
        "bio length, avatar, privacy and username length/digits only.",
        "- The cross-platform model's behaviour on Bluesky and Mastodon is not measured; reports say so.",
        "",
    ]
    return "\n".join(out)


def target_lines(ev: dict[str, Any]) -> list[str]:
    """Each target of the issue, the measured figure and whether it is met."""
    lines = []
    tw = ev.get("models", {}).get("twitter", {})

    def check(label: str, value: float | None, target: float) -> None:
        if value is None:
            return
        mark = "met" if value >= target else "**not met**"
        lines.append(f"- {label}: {value:.4f} (target ≥ {target}) — {mark}")

    if "cv" in tw:
        check("Twitter CV MCC", tw["cv"]["mcc"], TARGETS["twitter_cv_mcc"])
        check("Twitter CV F1", tw["cv"]["f1"], TARGETS["twitter_cv_f1"])
    for vendor, target in TARGETS["lovo_recall"].items():
        if "lovo" in tw:
            check(f"leave-one-vendor-out recall {vendor}", tw["lovo"][vendor]["recall"], target)
            check(f"leave-one-vendor-out human specificity ({vendor} held out)", tw["lovo"][vendor]["specificity"], TARGETS["lovo_specificity"])
    ig = ev.get("models", {}).get("instagram", {})
    if "cv" in ig:
        check("Instagram CV F1 (fake class)", ig["cv"]["f1"], TARGETS["instagram_cv_f1"])
    q = ev.get("quantification")
    if q:
        mae = q["mae"]
        lines.append(f"- fake-share MAE of the default estimator: {100 * mae:.2f} points (target ≤ 2) — " + ("met" if mae <= TARGETS["quantification_mae"] else "**not met**"))
        check("95% interval coverage of the default estimator", q["coverage"], TARGETS["quantification_coverage"])
    return lines
