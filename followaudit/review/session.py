"""The reviewed sample: draw it, show one follower at a time, record answers, export/import, report.

The terminal (``followaudit review``), the web review page and the CSV round trip all go through
these functions; the numbers come from ``estimate/reviewed.py``. The model's label is read only
after an answer is recorded (``answer`` returns it), so it cannot anchor the reviewer.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..classify import label_followers
from ..errors import InputError
from ..estimate.reviewed import CANT_TELL, REVIEW_LABELS, reviewed_section
from ..estimate.sample_design import sample_size
from ..report.core import MIN_REVIEWED
from ..schema import COLUMN_NAMES, LABELS
from ..store.workspace import Snapshot, Store

if TYPE_CHECKING:
    from ..report.core import Report

DEFAULT_REVIEW_N = 100
DEFAULT_SEED = 1
DESIGNS = ("uniform", "stratified")
KEYS = {"f": "fake", "i": "inactive", "r": "real", "c": CANT_TELL}
# Spellings a spreadsheet may use; matched after lower-casing and trimming.
LABEL_SPELLINGS = {
    **{k: k for k in REVIEW_LABELS},
    "f": "fake", "bot": "fake", "spam": "fake", "bought": "fake", "fake account": "fake",
    "i": "inactive", "dormant": "inactive", "dead": "inactive", "abandoned": "inactive",
    "r": "real", "human": "real", "genuine": "real", "authentic": "real", "active": "real", "ok": "real",
    "c": CANT_TELL, "can't tell": CANT_TELL, "cant tell": CANT_TELL, "can't-tell": CANT_TELL, "cant-tell": CANT_TELL,
    "can not tell": CANT_TELL, "cannot tell": CANT_TELL, "unsure": CANT_TELL, "unknown": CANT_TELL, "?": CANT_TELL,
    "not sure": CANT_TELL, "skip": CANT_TELL,
}
PROFILE_FIELDS = [
    "handle", "display_name", "bio", "created_at", "followers_count", "following_count", "posts_count",
    "likes_count", "last_active_at", "has_avatar", "verified", "private", "self_declared_bot",
]


def parse_label(text: str | None) -> str | None:
    """A reviewer's label in any common spelling → fake / inactive / real / cant_tell (None if unknown)."""
    if text is None:
        return None
    key = " ".join(str(text).replace("’", "'").replace("_", " ").strip().lower().split())
    return LABEL_SPELLINGS.get(key) or LABEL_SPELLINGS.get(key.replace(" ", "_"))


def profile_url_expr(platform: str | None) -> pl.Expr:
    """A follower's public profile URL from ``handle`` (and ``follower_id``), per platform."""
    handle = pl.col("handle").str.strip_chars().str.strip_chars_start("@")
    fid = pl.col("follower_id").cast(pl.Utf8)
    p = (platform or "").lower()
    if p in ("twitter", "x"):
        return pl.when(handle.is_not_null()).then("https://x.com/" + handle).otherwise("https://x.com/i/user/" + fid)
    if p == "instagram":
        return "https://www.instagram.com/" + handle + "/"
    if p == "bluesky":
        return "https://bsky.app/profile/" + pl.coalesce(handle, fid)
    if p == "mastodon":  # user@instance → https://instance/@user
        parts = handle.str.split("@")
        return pl.when(parts.list.len() == 2).then("https://" + parts.list.get(1, null_on_oob=True) + "/@" + parts.list.get(0, null_on_oob=True))
    if p == "tiktok":
        return "https://www.tiktok.com/@" + handle
    return pl.lit(None, pl.Utf8)


@dataclass(frozen=True)
class Subject:
    """What is reviewed: a follower snapshot or a likers audit (its engagers)."""

    scope: str  # "snapshot" or "likers"
    subject_id: int
    platform: str | None
    account: str | None
    size: int  # followers (or engagers) that can be sampled
    fpc_population: int | None  # M when the list is itself a uniform sample of M
    taken_at: datetime | None = None

    @property
    def noun(self) -> str:
        return "engagers" if self.scope == "likers" else "followers"


def snapshot_subject(snapshot: Snapshot) -> Subject:
    return Subject("snapshot", snapshot.snapshot_id, snapshot.platform, snapshot.account, snapshot.n_followers,
                   snapshot.design.fpc_population, snapshot.taken_at)


def likers_subject(store: Store, likers_id: int) -> Subject:
    audit = store.likers_audit(likers_id)
    row = store.row("SELECT count(*) AS n FROM engager_rows WHERE likers_id = ?", [likers_id])
    size = int(row["n"]) if row else 0
    population = audit["sample_population"] if audit["sample_kind"] == "uniform" and audit["sample_population"] and size < audit["sample_population"] else None
    return Subject("likers", likers_id, audit["platform"], audit["account"], size, population, audit["taken_at"])


def subject_for(store: Store, ref: str, likers: bool = False) -> Subject:
    """The subject a user names: a snapshot id / account, or with ``likers`` a likers audit id."""
    if likers:
        if not str(ref).isdigit() or store.row("SELECT 1 AS x FROM likers_audits WHERE likers_id = ?", [int(ref)]) is None:
            raise InputError(f"no likers audit {ref!r}", "`followaudit likers ...` prints the likers audit id")
        return likers_subject(store, int(ref))
    return snapshot_subject(store.snapshot(ref))


def stored_label_method(store: Store, subject: Subject) -> str | None:
    """The labelling method whose stored labels cover the snapshot (model before rules)."""
    if subject.scope != "snapshot":
        return None
    have = {m for m, n in store.label_counts(subject.subject_id).items() if n == subject.size}
    return next((m for m in ("model", "rules") if m in have), next(iter(sorted(have)), None))


def ensure_sample(store: Store, subject: Subject, *, n: int | None = None, precision: float | None = None,
                  design: str | None = None, seed: int | None = None) -> dict[str, Any]:
    """The subject's sample design (drawn on first use) and its queue extended to the size asked for."""
    if subject.size == 0:
        raise InputError(f"no {subject.noun} to review in this {subject.scope}", "import or collect them first")
    if n is not None and precision is not None:
        raise InputError("-n and --precision both given", "use one: a sample size, or the precision you need")
    current = store.review_design(subject.scope, subject.subject_id)
    if current is None:
        kind = design or "uniform"
        if kind not in DESIGNS:
            raise InputError(f"unknown design {kind!r}", "use uniform or stratified")
        spec: dict[str, Any] = {"kind": kind, "population": subject.size}
        spec["seed"] = seed if seed is not None else store.previous_review_seed(subject.platform, subject.account) if subject.scope == "snapshot" else None
        spec["seed"] = DEFAULT_SEED if spec["seed"] is None else spec["seed"]
        if kind == "stratified":
            method = stored_label_method(store, subject)
            if method is None:
                raise InputError("a stratified sample needs the model's labels of every follower", "run `followaudit audit SNAPSHOT` first, or use --design uniform")
            counts = store.query("SELECT label, count(*) AS n FROM labels WHERE snapshot_id = ? AND method = ? GROUP BY label", [subject.subject_id, method])
            spec["strata"] = {str(k): int(v) for k, v in counts.iter_rows()}
            spec["strata_method"] = method
        with store.transaction():
            store.save_review_design(subject.scope, subject.subject_id, spec)
        current = store.review_design(subject.scope, subject.subject_id)
        assert current is not None
    elif design and design != current["kind"]:
        raise InputError(f"this {subject.scope} already has a {current['kind']} sample", "keep reviewing it (omit --design), or review another snapshot")
    if precision is not None:
        n = sample_size(precision, subject.size)
    have = store.review_queue_length(subject.scope, subject.subject_id)
    target = min(subject.size, max(have, n if n is not None else (DEFAULT_REVIEW_N if have == 0 else have)))
    with store.transaction():
        store.extend_review_queue(subject.scope, subject.subject_id, target)
    return current


def design_summary(design: dict[str, Any], subject: Subject) -> dict[str, Any]:
    """The design as the report shows it."""
    kind = design["kind"]
    text = f"uniform random sample of the {subject.size:,} {subject.noun} (seed {design['seed']})"
    if kind == "stratified":
        sizes = ", ".join(f"{k} {v:,}" for k, v in sorted((design.get("strata") or {}).items()))
        text = f"random sample stratified by the model's label ({sizes}; seed {design['seed']})"
    return {**design, "description": text}


def queue_with_answers(store: Store, subject: Subject, reviewer: str | None = None, design: dict[str, Any] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The queue with each follower's primary label (first answer, any reviewer) and ``mine`` (this
    reviewer's answer), and every current answer (a reviewer's latest per follower).

    With ``design`` (a snapshot not sampled yet, whose account was), the queue is that design's
    seeded order, long enough to hold every follower answered on an earlier snapshot.
    """
    answers = store.subject_reviews(subject.scope, subject.subject_id, subject.platform, subject.account)
    if design is not None:
        queue = store.review_order(subject.scope, subject.subject_id, design, answers["follower_id"].n_unique() + 1)
    else:
        queue = store.review_queue(subject.scope, subject.subject_id)
    primary = answers.sort("review_id").unique("follower_id", keep="first").select("follower_id", pl.col("label").alias("primary"))
    mine = answers.filter(pl.col("reviewer") == (reviewer or "")).select("follower_id", pl.col("label").alias("mine"))
    out = queue.join(primary, on="follower_id", how="left").join(mine, on="follower_id", how="left").sort("position")
    return out, answers


def progress(store: Store, subject: Subject, reviewer: str) -> dict[str, int]:
    """``done`` (answered by this reviewer) of ``total`` in the queue, and the prefix the estimate uses."""
    queue, _ = queue_with_answers(store, subject, reviewer)
    answered = queue["primary"].is_not_null()
    prefix = int(answered.arg_min()) if answered.len() and not answered.all() else answered.len()  # type: ignore[arg-type]
    return {"done": int(queue["mine"].is_not_null().sum()), "total": queue.height, "prefix": prefix}


def _profiles(store: Store, subject: Subject, ids: list[str]) -> pl.DataFrame:
    table, key = ("engager_rows", "likers_id") if subject.scope == "likers" else ("followers", "snapshot_id")
    cols = ", ".join(c for c in ["follower_id", *PROFILE_FIELDS] if c in (*COLUMN_NAMES, "bio"))
    frame = store.query(f"SELECT {cols} FROM {table} WHERE {key} = ? AND follower_id IN (SELECT unnest(?))", [subject.subject_id, ids])
    return frame.with_columns(profile_url_expr(subject.platform).alias("profile_url"))


def next_item(store: Store, subject: Subject, reviewer: str) -> dict[str, Any] | None:
    """The next follower this reviewer has not answered, with its profile fields and URL (no label)."""
    queue, _ = queue_with_answers(store, subject, reviewer)
    todo = queue.filter(pl.col("mine").is_null())
    if todo.height == 0:
        return None
    first = todo.row(0, named=True)
    profile = _profiles(store, subject, [first["follower_id"]]).to_dicts()
    return {
        "position": int(first["position"]), "follower_id": first["follower_id"], "stratum": first["stratum"],
        "done": int(queue["mine"].is_not_null().sum()), "total": queue.height,
        "profile": profile[0] if profile else {"follower_id": first["follower_id"]},
    }


def model_labels(store: Store, subject: Subject, ids: list[str], method: str | None = None) -> pl.DataFrame:
    """``follower_id, predicted, reasons``: the stored labels of ``method`` (or the best stored), else
    labels computed now for just these followers."""
    method = method or stored_label_method(store, subject)
    if subject.scope == "snapshot" and method is not None and stored_label_method(store, subject) is not None:
        found = store.query(
            f"SELECT follower_id, label AS predicted, reasons FROM {store.labels_full} WHERE snapshot_id = ? AND method = ? AND follower_id IN (SELECT unnest(?))",
            [subject.subject_id, method, ids],
        )
        if found.height == len(set(ids)):
            return found
    table, key = ("engager_rows", "likers_id") if subject.scope == "likers" else ("followers", "snapshot_id")
    rows = store.query(f"SELECT * EXCLUDE ({key}, raw) FROM {table} WHERE {key} = ? AND follower_id IN (SELECT unnest(?))", [subject.subject_id, ids])
    labelled = label_followers(rows, method=method or "rules", as_of=subject.taken_at or datetime.now(UTC), platform=subject.platform)
    return labelled.select("follower_id", pl.col("label").alias("predicted"), "reasons")


def answer(store: Store, subject: Subject, reviewer: str, follower_id: str, label: str) -> dict[str, Any]:
    """Record a reviewer's label for a queued follower; returns the model's label and reasons (shown now)."""
    parsed = parse_label(label)
    if parsed is None:
        raise InputError(f"unknown review label {label!r}", "use fake, inactive, real or cant_tell (keys f, i, r, c)")
    queue = store.review_queue(subject.scope, subject.subject_id).filter(pl.col("follower_id") == str(follower_id))
    if queue.height == 0:
        raise InputError(f"follower {follower_id!r} is not in this review sample", "review the sample's followers (`followaudit review export` lists them)")
    design = store.review_design(subject.scope, subject.subject_id)
    assert design is not None
    row = queue.row(0, named=True)
    with store.transaction():
        store.add_review(subject.scope, subject.subject_id, follower_id=str(follower_id), label=parsed, reviewer=reviewer,
                         platform=subject.platform, account=subject.account, design=design, stratum=row["stratum"], position=row["position"])
    model = model_labels(store, subject, [str(follower_id)]).to_dicts()
    return {"follower_id": str(follower_id), "label": parsed, "model": model[0] if model else None}


def undo(store: Store, subject: Subject, reviewer: str) -> str | None:
    with store.transaction():
        return store.undo_review(subject.scope, subject.subject_id, reviewer)


# -- the CSV round trip ------------------------------------------------------------------------------
def export_sample(store: Store, subject: Subject, path: Path, *, n: int | None = None, precision: float | None = None,
                  design: str | None = None, seed: int | None = None) -> int:
    """Write the sample (follower_id, handle, profile_url, the profile fields, an empty label column)."""
    ensure_sample(store, subject, n=n, precision=precision, design=design, seed=seed)
    queue = store.review_queue(subject.scope, subject.subject_id)
    if n is not None:
        queue = queue.head(n)
    profiles = _profiles(store, subject, queue["follower_id"].to_list())
    out = queue.join(profiles, on="follower_id", how="left").sort("position").select(
        "follower_id", "handle", "profile_url", *[c for c in PROFILE_FIELDS if c != "handle" and c in profiles.columns],
        pl.lit("").alias("label"),
    )
    out = out.with_columns(pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.write_csv(path)
    return out.height


@dataclass
class ImportResult:
    kept: int
    blank: int
    rejects: list[dict[str, Any]]


def import_labels(store: Store, subject: Subject, path: Path, reviewer: str) -> ImportResult:
    """Read ``follower_id,label`` rows back; bad rows are listed with line and reason, good rows kept."""
    if not path.exists():
        raise InputError(f"no file {path}", "give the CSV written by `followaudit review export`")
    if store.review_design(subject.scope, subject.subject_id) is None:
        raise InputError(f"this {subject.scope} has no review sample", "run `followaudit review export` first")
    queue = store.review_queue(subject.scope, subject.subject_id)
    queued = dict(zip(queue["follower_id"].to_list(), queue.iter_rows(named=True), strict=True))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text", "save the sheet as CSV (UTF-8)") from exc
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "follower_id" not in fields or "label" not in fields:
        raise InputError(f"{path} needs the columns follower_id and label", f"found: {', '.join(fields) or 'no header'}")
    rejects: list[dict[str, Any]] = []
    good: list[tuple[str, str]] = []
    blank = 0
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        fid, text_label = row.get("follower_id", ""), row.get("label", "")
        if not text_label:
            blank += 1
            continue
        label = parse_label(text_label)
        reason = (
            "no follower_id" if not fid else
            f"unknown label {text_label!r} (use fake, inactive, real or cant_tell)" if label is None else
            f"follower {fid} is not in this review sample" if fid not in queued else
            f"follower {fid} appears twice" if fid in seen else None
        )
        if reason:
            rejects.append({"line": line, "follower_id": fid, "reason": reason})
            continue
        seen.add(fid)
        good.append((fid, label))  # type: ignore[arg-type]
    design = store.review_design(subject.scope, subject.subject_id)
    assert design is not None
    existing = store.subject_reviews(subject.scope, subject.subject_id, subject.platform, subject.account)
    mine = dict(existing.filter(pl.col("reviewer") == reviewer).select("follower_id", "label").iter_rows())
    now = datetime.now(UTC)
    with store.transaction():
        for fid, label in good:
            if mine.get(fid) == label:
                continue  # importing the same sheet twice adds nothing
            q = queued[fid]
            store.add_review(subject.scope, subject.subject_id, follower_id=fid, label=label, reviewer=reviewer,
                             platform=subject.platform, account=subject.account, design=design, stratum=q["stratum"],
                             position=q["position"], reviewed_at=now)
    return ImportResult(len(good), blank, rejects)


# -- the report section --------------------------------------------------------------------------------
def reviewed_summary(store: Store, subject: Subject, predicted_counts: dict[str, int], *, method: str | None,
                     confidence: float = 0.95, predicted: pl.DataFrame | None = None) -> tuple[dict[str, Any] | None, int]:
    """The ``reviewed`` section (None below ``MIN_REVIEWED`` definite reviews) and the definite count.

    The estimate uses the longest start of the sample that is fully answered (so followers carried
    over from an earlier snapshot count once the new followers before them are reviewed too).
    ``predicted`` (follower_id, predicted) gives the model's labels when they are in memory.
    """
    design = store.review_design(subject.scope, subject.subject_id)
    carried = None
    if design is None:  # a new snapshot of an account reviewed before: the same seeded order
        seed = store.previous_review_seed(subject.platform, subject.account) if subject.scope == "snapshot" else None
        if seed is None:
            return None, 0
        design = carried = {"kind": "uniform", "seed": seed, "strata": None, "strata_method": None, "population": subject.size}
    queue, answers = queue_with_answers(store, subject, design=carried)
    if answers.height == 0:
        return None, 0
    answered = queue["primary"].is_not_null()
    prefix = int(answered.arg_min()) if not answered.all() else answered.len()  # type: ignore[arg-type]
    sample = queue.head(prefix).select("follower_id", pl.col("primary").alias("label"), "stratum")
    if predicted is None:
        predicted = model_labels(store, subject, sample["follower_id"].to_list(), method).select("follower_id", "predicted")
    sample = sample.join(predicted.select("follower_id", "predicted"), on="follower_id", how="left")
    definite = int(sample["label"].is_in(list(LABELS)).sum())
    if definite < MIN_REVIEWED:
        return None, definite
    in_sample = answers.filter(pl.col("follower_id").is_in(sample["follower_id"].implode()))
    section = reviewed_section(sample, predicted_counts, design_summary(design, subject), confidence=confidence,
                               population=subject.fpc_population, all_reviews=in_sample)
    section["reviewers"] = sorted(answers["reviewer"].unique().to_list())
    section["answered_beyond_prefix"] = int(answered.sum()) - prefix
    section["carried_over"] = int((in_sample["snapshot_id"] != subject.subject_id).sum()) if subject.scope == "snapshot" else 0
    return section, definite


def attach_reviewed(store: Store, snapshot: Snapshot, report: Report) -> None:
    """Put the reviewed-sample estimate on the report (the headline once ``MIN_REVIEWED`` are reviewed)."""
    if not store.has_reviews_table():
        return
    subject = snapshot_subject(snapshot)
    counts = {k: s.count for k, s in report.shares.items()}
    section, definite = reviewed_summary(store, subject, counts, method=report.method, confidence=report.confidence_level)
    if section is not None:
        report.reviewed = section
    elif definite:
        report.notes.append(f"{definite} of the {MIN_REVIEWED} reviewed followers needed for a reviewed estimate (`followaudit review {snapshot.snapshot_id}`)")
