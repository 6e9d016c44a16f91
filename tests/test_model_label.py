"""The shipped models: labelling, reasons in words, model choice, and the feature-mismatch error."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from followaudit.classify import model as M
from followaudit.classify.reasons import thousands
from followaudit.errors import ModelError
from followaudit.schema import conform

AS_OF = datetime(2015, 2, 14, 12, tzinfo=UTC)


def _followers() -> pl.DataFrame:
    return conform(
        pl.DataFrame(
            {
                "platform": ["twitter"] * 3,
                "follower_id": ["bought", "person", "quiet"],
                "handle": ["NolascocyrAndre", "marco_rossi", "giulia_b"],
                "display_name": ["Andree Nolasco", "Marco Rossi", "Giulia B"],
                "created_at": [datetime(2015, 2, 5, tzinfo=UTC), datetime(2009, 3, 1, tzinfo=UTC), datetime(2010, 6, 1, tzinfo=UTC)],
                "followers_count": [3, 812, 240],
                "following_count": [2140, 390, 180],
                "posts_count": [0, 15200, 3100],
                "likes_count": [0, 2300, 410],
                "listed_count": [0, 25, 4],
                "has_avatar": [False, True, True],
                "bio": ["", "Giornalista, Roma. Opinioni mie.", "Architetta a Milano"],
                "has_url": [False, True, False],
                "has_location": [False, True, True],
                "last_active_at": [None, datetime(2015, 2, 13, tzinfo=UTC), datetime(2014, 1, 1, tzinfo=UTC)],
                "observed_at": [AS_OF] * 3,
            }
        )
    )


def test_label_model_labels_with_precedence_and_reasons() -> None:
    out = M.label_model(_followers(), as_of=AS_OF, platform="twitter")
    assert out.columns == ["follower_id", "label", "probability", "reasons", "activity_unknown"]
    got = dict(zip(out["follower_id"], out["label"], strict=True))
    assert got == {"bought": "fake", "person": "real", "quiet": "inactive"}
    probs = dict(zip(out["follower_id"], out["probability"], strict=True))
    assert probs["bought"] > 0.9 and probs["person"] < 0.1
    bought = out.filter(pl.col("follower_id") == "bought")["reasons"][0].to_list()
    assert "follows 2,140 accounts, followed by 3" in bought
    assert 2 <= len(bought) <= 3 and len(set(bought)) == len(bought)
    quiet = out.filter(pl.col("follower_id") == "quiet")["reasons"][0].to_list()
    assert quiet[0] == "no post in the last 90 days"


def test_explain_all_gives_reasons_towards_real_too() -> None:
    out = M.label_model(_followers(), as_of=AS_OF, platform="twitter", explain="all")
    person = out.filter(pl.col("follower_id") == "person")["reasons"][0].to_list()
    assert len(person) >= 2  # rule text, then the model's reasons for "real"
    assert any(p.startswith("follows 390 accounts, followed by 812") or "posts in" in p for p in person[1:])
    none = M.label_model(_followers(), as_of=AS_OF, platform="twitter", explain="none")
    assert none.filter(pl.col("follower_id") == "bought")["reasons"][0].to_list() == [M.R_MODEL_FAKE]
    with pytest.raises(ValueError):
        M.label_model(_followers(), as_of=AS_OF, explain="some")


def test_platform_picks_the_model_and_says_when_transfer_is_unmeasured() -> None:
    assert M.model_for_platform("twitter") == "twitter"
    assert M.model_for_platform("Instagram") == "instagram"
    assert M.model_for_platform("bluesky") == "crossplatform"
    assert M.model_for_platform(None) == "crossplatform"
    tw = M.model_info("twitter")
    assert tw["name"] == "twitter" and tw["transfer_measured"] is True
    assert 0.9 < tw["sensitivity"] <= 1 and 0.9 < tw["specificity"] <= 1
    assert tw["error_counts"]["tp"] + tw["error_counts"]["fn"] == 2508
    bs = M.model_info("bluesky")
    assert bs["name"] == "crossplatform" and bs["transfer_measured"] is False
    assert "unmeasured" in bs["description"]


def test_mixed_platforms_use_each_rows_model_and_keep_order() -> None:
    frame = pl.concat([_followers(), _followers().with_columns(pl.lit("bluesky").alias("platform"), pl.col("follower_id") + "_bs")])
    out = M.label_model(frame, as_of=AS_OF)
    assert out["follower_id"].to_list() == frame["follower_id"].to_list()
    assert out.filter(pl.col("follower_id") == "bought_bs")["label"][0] == "fake"


def _copy_models(tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(M.MODEL_DIR, target)
    return target


def test_feature_mismatch_raises_a_clear_error(tmp_path: Path) -> None:
    models = _copy_models(tmp_path)
    path = models / "twitter.txt"
    text = path.read_text()
    path.write_text(text.replace("handle_consonant_run", "handle_vowel_run"))
    with pytest.raises(ModelError) as err:
        M.load_model("twitter", models)
    assert "other features" in err.value.message and "handle_consonant_run" in err.value.message
    assert "followaudit train" in err.value.hint


def test_missing_model_files_raise_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        M.load_model("twitter", tmp_path)
    models = _copy_models(tmp_path)
    (models / "instagram.txt").unlink()
    with pytest.raises(ModelError, match="missing"):
        M.load_model("instagram", models)


def test_models_are_lightgbm_text_not_pickles() -> None:
    for name in M.SPECS:
        head = (M.MODEL_DIR / f"{name}.txt").read_text()[:200]
        assert head.startswith("tree\nversion=")


def test_thousands_separator() -> None:
    df = pl.DataFrame({"x": [0, 7, 999, 1000, 2140, 1234567, -45000, 3000000000]})
    assert df.select(thousands(pl.col("x")))["x"].to_list() == ["0", "7", "999", "1,000", "2,140", "1,234,567", "-45,000", "3,000,000,000"]
