from datetime import UTC, datetime, timedelta

import polars as pl

from followaudit.classify.rules import (
    R_CC_LOW,
    R_MODERATION,
    R_NEVER_POSTED,
    R_NO_RECENT,
    R_RATIO,
    R_REAL,
    R_SPAM_BIO,
    label_rules,
)
from followaudit.schema import conform

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def person(**over):
    base = {
        "follower_id": "1", "handle": "alice", "display_name": "Alice", "created_at": AS_OF - timedelta(days=2000),
        "followers_count": 300, "following_count": 200, "posts_count": 1500, "listed_count": 3, "has_avatar": True,
        "bio": "Gardener and writer", "has_location": True, "has_url": True, "last_active_at": AS_OF - timedelta(days=2),
    }
    base.update(over)
    return base


def labels_of(*rows):
    out = label_rules(conform(pl.DataFrame(list(rows))), as_of=AS_OF)
    return dict(zip(out["follower_id"], zip(out["label"], out["reasons"].to_list(), strict=True), strict=True))


def test_active_human_is_real_with_reason():
    assert labels_of(person()) == {"1": ("real", [R_REAL])}


def test_two_socialbakers_criteria_make_a_fake_with_both_reasons():
    got = labels_of(person(following_count=5000, followers_count=10, bio="Make money fast, follow back"))
    label, reasons = got["1"]
    assert label == "fake"
    assert R_RATIO in reasons and R_SPAM_BIO in reasons


def test_one_socialbakers_criterion_alone_is_not_enough():
    label, _ = labels_of(person(following_count=5000, followers_count=10))["1"]
    assert label == "real"


def test_camisani_calzolari_low_score_is_fake():
    thin = person(display_name="", has_avatar=False, has_location=False, bio="", followers_count=2,
                  listed_count=0, posts_count=3, has_url=False, following_count=100)
    label, reasons = labels_of(thin)["1"]
    assert label == "fake" and R_CC_LOW in reasons


def test_moderation_label_spam_is_fake():
    label, reasons = labels_of(person(moderation_labels=["spam"]))["1"]
    assert (label, reasons) == ("fake", [R_MODERATION])


def test_inactivity_threshold_and_never_posted():
    got = labels_of(
        person(follower_id="idle", last_active_at=AS_OF - timedelta(days=91)),
        person(follower_id="fresh", last_active_at=AS_OF - timedelta(days=89)),
        person(follower_id="never", posts_count=0, last_active_at=None),
    )
    assert got["idle"] == ("inactive", [R_NO_RECENT.format(days=90)])
    assert got["fresh"][0] == "real"
    assert got["never"] == ("inactive", [R_NEVER_POSTED])


def test_unknown_fields_never_fire_a_rule():
    row = {"follower_id": "x"}
    out = label_rules(conform(pl.DataFrame([row])), as_of=AS_OF)
    assert out["label"].to_list() == ["real"]
    assert out["activity_unknown"].to_list() == [True]
