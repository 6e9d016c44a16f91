"""The audit pipeline: snapshot → labels → shares with intervals → Report.

``audit_snapshot`` is what the CLI, the web app and Python users call; it returns the Report and the
per-follower labels, and stores the labels in the workspace.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import polars as pl

from .bursts.attach import (
    SCAN_ALONGSIDE_MAX,
    EarlyScan,
    MembersWhileLabelling,
    ResolvedBursts,
    report_bursts,
    resolve_bursts,
    scan_follow_order,
)
from .bursts.detect import BURST_REASON_PREFIX
from .classify import UNREAD_COLUMNS, label_followers
from .classify.features import inputs_of
from .classify.masks import PROFILE_FIELDS, closest_mask
from .classify.masks import known_counts as field_counts
from .classify.model import (
    feature_matrix,
    load_model,
    model_for_platform,
    model_info,
    prepare_kernels,
)
from .classify.reasons import pattern_counts
from .classify.rules import DEFAULT_INACTIVE_DAYS, rule_columns
from .errors import InputError
from .estimate.audience import model_estimates
from .estimate.corrected import probability_histogram
from .estimate.intervals import shares_from_counts
from .estimate.shift import AudienceProfile, profile_stride
from .reach.audience import MASS_THRESHOLD, audience_section, batch_audience_counts
from .reach.growth import daily_follows
from .reach.platform_evidence import evidence_notes, follow_times, platform_evidence
from .reach.sections import SectionInputs, build_sections, section_inputs
from .report.core import Report
from .report.evidence import (
    fields_known,
    known_counts_frame,
    known_counts_from_footer,
    known_counts_sql,
    observed_evidence,
    withheld_reason,
)
from .review import attach_reviewed
from .schema import COLUMN_NAMES, LABELS, SCHEMA, conform
from .sources.formats.stream import prefetch
from .sources.in_place import TRIMMED, RowCheck
from .store.workspace import Snapshot, Store

# Columns the labellers read; ``raw`` stays in the database (it is the bulk of the bytes).
LABEL_INPUT_COLUMNS = [c for c in COLUMN_NAMES if c != "raw"]
TOP_REASONS = 8
# Followers labelled per batch: large enough to stay vectorised; two are labelled at once, so this
# bounds memory (500k held ~400 MB more at 3M for no less time, measured alternately).
BATCH_ROWS = 250_000
LABELLING_AHEAD = 2  # batches labelled at once
T = TypeVar("T")
R = TypeVar("R")
AUDIT_MEMORY_LIMIT = "256MB"  # DuckDB's memory during an audit (see audit_snapshot)


@dataclass
class AuditResult:
    report: Report
    # follower_id, handle, label, probability, reasons — for in-memory audits (``audit_frame``).
    # ``audit_snapshot`` streams and leaves this None: read labels back with ``Store.labels``.
    labels: pl.DataFrame | None = None


@dataclass
class LabelTally:
    """What a Report needs from the labels, addable batch by batch (so 10M followers stream)."""

    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    activity_unknown: int = 0
    # model audits: histogram and sum of calibrated probabilities (prevalence.probability_histogram)
    probabilities: tuple[np.ndarray, float] | None = None
    # model audits: followers each profile field was known for, and their binned features (shift)
    known: Counter = field(default_factory=Counter)
    profiled: int = 0
    profile: AudienceProfile | None = None
    # audited / known / mass / reachable followers (reach/audience.py), counted batch by batch
    audience: Counter = field(default_factory=Counter)

    def add_profiles(
        self, followers: pl.DataFrame, platform: str | None, as_of: datetime | None, X: np.ndarray | None = None,
        model_name: str | None = None, stride: int = 1,
    ) -> None:
        """Count known fields and bin the model's features of ``followers`` (for the shift diagnostic).

        ``X``: the feature matrix labelling already computed for these rows with model ``model_name``
        (else computed here). ``stride``: the shift profile reads every k-th follower (``profile_stride``)."""
        if not set(COLUMN_NAMES) - {"raw"} <= set(followers.columns):
            followers = conform(followers)  # partial frames (tests, synth), as label_followers does
        self.known.update(field_counts(followers))
        self.profiled += followers.height
        model = load_model(model_for_platform(platform))
        reference = model.card.get("shift_reference")
        if reference and followers.height:
            if self.profile is None:
                self.profile = AudienceProfile(stride=stride)
            rows = self.profile.sample_rows(followers.height)
            if X is not None and model_name == model.name and X.shape == (followers.height, len(model.spec.features)):
                X = X[rows]
            else:  # features of the sampled followers only
                X = feature_matrix(followers[rows], model.spec.features, as_of)
            self.profile.add(X, model.spec.features, reference)

    def add(self, labels: pl.DataFrame, followers: pl.DataFrame | None = None, reason_counts: Counter | None = None) -> None:
        """Count a batch of labels; ``reason_counts``: its reasons already counted by pattern
        (``label_followers``' ``features_out["reason_counts"]``)."""
        self.counts.update(dict(labels["label"].value_counts().iter_rows()))
        if "probability" in labels.columns and labels["probability"].null_count() < labels.height:
            hist, total = probability_histogram(labels["probability"].drop_nulls().to_numpy())
            if self.probabilities is not None:
                hist, total = hist + self.probabilities[0], total + self.probabilities[1]
            self.probabilities = (hist, total)
        if reason_counts is None:  # counted from the text (the labeller did not count them)
            reasons = (labels.lazy().filter(pl.col("label") != "real").select(pl.col("reasons").explode())
                       .filter(~pl.col("reasons").str.starts_with(BURST_REASON_PREFIX))  # counted by finish_report
                       .collect()["reasons"])
            reason_counts = pattern_counts(reasons)
        self.reasons.update(reason_counts)
        if "activity_unknown" in labels.columns:
            self.activity_unknown += int(labels["activity_unknown"].sum())
        elif followers is not None:  # stored labels do not keep it; it derives from the profile
            unknown = rule_columns(None)["activity_unknown"]
            self.activity_unknown += int(followers.select(unknown.sum()).item())

    def top_reasons(self, k: int = TOP_REASONS) -> list[tuple[str, int]]:
        """The most frequent reasons for fake and inactive labels, with counts."""
        return sorted(self.reasons.items(), key=lambda rc: (-rc[1], rc[0]))[:k]


def top_reasons(labels: pl.DataFrame, k: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The most frequent reasons for fake and inactive labels, with counts."""
    tally = LabelTally()
    tally.add(labels)
    return tally.top_reasons(k)


def build_report(
    snapshot: Snapshot,
    tally: LabelTally,
    *,
    method: str,
    inactive_days: int,
    confidence: float,
    first_reject: dict | None = None,
    known_counts: dict[str, int] | None = None,
    as_of: datetime | None = None,
) -> Report:
    """The Report of one audit, from the label tally and the snapshot's metadata.

    ``known_counts`` (``report.evidence``): per profile field, the followers it was known for; when
    they carry too little to judge, the report is ``withheld``: no shares, no reasons, one line why.
    ``as_of``: the time ages were measured at (default: the snapshot's observation time).
    """
    known = fields_known(known_counts) if known_counts else None
    n_known = int(known_counts["n"]) if known_counts else sum(tally.counts.values())
    withheld = withheld_reason(known, n_known, snapshot.platform) if known is not None else None
    shares = {} if withheld else shares_from_counts({k: int(tally.counts.get(k, 0)) for k in LABELS}, confidence, snapshot.design)
    notes: list[str] = []
    if tally.activity_unknown:
        notes.append(
            f"last activity is unknown for {tally.activity_unknown:,} followers; they count as active unless they never posted"
        )
    if snapshot.followers_reported and snapshot.followers_reported > snapshot.n_followers and snapshot.design.kind == "full":
        gap = snapshot.followers_reported - snapshot.n_followers
        notes.append(f"the platform reports {snapshot.followers_reported:,} followers but {gap:,} could not be listed (removed, suspended or hidden accounts)")
    report = Report(
        account=snapshot.account,
        platform=snapshot.platform,
        snapshot=snapshot.snapshot_id,
        source=snapshot.source,
        taken_at=snapshot.taken_at,
        followers_audited=n_known if withheld else sum(tally.counts.values()),
        followers_reported=snapshot.followers_reported,
        sample_design={
            "kind": snapshot.design.kind,
            "n": snapshot.design.n,
            "population": snapshot.design.population,
            "seed": snapshot.design.seed,
            "description": snapshot.design.describe(),
        },
        method=method,
        method_detail=method_details(method, snapshot.platform),
        confidence_level=confidence,
        inactive_days=inactive_days,
        shares=shares,
        top_reasons=tally.top_reasons(),
        activity_unknown=tally.activity_unknown,
        rejects=snapshot.n_rejects,
        first_reject=first_reject,
        notes=notes,
        withheld=withheld,
    )
    if known is not None:
        report.evidence["fields_known"] = known
    report.evidence["observed_at"] = observation(snapshot, as_of, known)
    if report.evidence["observed_at"]["assumed"]:
        seen = report.evidence["observed_at"]
        notes.append(f"nothing says when these profiles were read: ages and activity are measured at {(seen['at'] or 'today')[:10]} "
                     f"({seen['detail'] or seen['source']}); pass --observed-at DATE if you know the crawl date")
    if withheld:
        return report
    if method == "model":  # the classifier's measured error corrects the fake share (estimate/)
        info = model_info(snapshot.platform)
        model = load_model(info["name"])
        n_prof = tally.profiled or 1
        known_share = {f: tally.known.get(f, 0) / n_prof for f in PROFILE_FIELDS} if tally.profiled else {f: 1.0 for f in PROFILE_FIELDS}
        mask = closest_mask(known_share, model.spec.masks, inputs_of(model.spec.features))
        report.corrected, evidence = model_estimates(
            {k: int(tally.counts.get(k, 0)) for k in LABELS}, model.card, mask=mask, profile=tally.profile,
            probabilities=tally.probabilities, confidence=confidence, design=snapshot.design,
        )
        report.evidence.update(evidence)
        if evidence["shift"]["level"] == "far":
            notes.append("these followers are far from the model's training data: the fake share is a wide range, not an estimate")
        if not info["transfer_measured"]:
            notes.append(f"the {info['name']} model's accuracy on {snapshot.platform or 'this platform'} is unmeasured (no labelled data); its error rates come from Twitter and Instagram")
    fake = report.headline_shares().get("fake")
    if fake is not None:
        report.evidence.setdefault("interval_method", fake.method)
    return report


def observation(snapshot: Snapshot, as_of: datetime | None, known: dict[str, float] | None) -> dict:
    """``evidence["observed_at"]``: the time ages are measured at and what says so.

    The import records how it knew (``settings["observed"]``: flag, record, dataset, file time);
    live collections are observed when collected; older snapshots fall back to their stored time.
    """
    rows = float((known or {}).get("observed_at") or 0.0)
    stored = snapshot.settings.get("observed") if isinstance(snapshot.settings.get("observed"), dict) else None
    if stored:
        source, detail = str(stored.get("source")), str(stored.get("detail") or "")
    elif snapshot.settings.get("api_base"):
        source, detail = "collection", str(snapshot.settings["api_base"])
    elif rows > 0:
        source, detail = "record", "the crawl time each record carries"
    else:
        source, detail = "snapshot time (assumed)", ""
    return observed_evidence(as_of or snapshot.taken_at, source, detail, rows)


def method_details(method: str, platform: str | None) -> dict:
    """What labelled the followers, for the report."""
    if method == "model":
        info = model_info(platform)
        keep = ("name", "file", "training_data", "cv", "sensitivity", "specificity", "error_counts", "threshold_probability", "transfer_measured")
        return {"name": "model", "description": info["description"], **{f"model_{k}" if k == "name" else k: info[k] for k in keep}}
    return {"name": "rules", "description": "Socialbakers criteria, Camisani-Calzolari human points, inactivity"}


def audit_frame(
    followers: pl.DataFrame,
    snapshot: Snapshot,
    *,
    method: str = "rules",
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    confidence: float = 0.95,
    first_reject: dict | None = None,
    labels: pl.DataFrame | None = None,
) -> AuditResult:
    """Label ``followers`` (canonical, in memory) and build the Report for ``snapshot``.

    ``labels`` (follower_id, label, probability, reasons[, activity_unknown]) skips labelling: the
    read-only web app and ``followaudit report`` pass the labels stored by an earlier audit.
    """
    counts = known_counts_frame(followers)
    too_little = withheld_reason(fields_known(counts), counts["n"], snapshot.platform) is not None
    if too_little:  # nothing to label from: no labels, no shares (the report says why)
        labels = pl.DataFrame(schema={"follower_id": pl.Utf8, "label": pl.Utf8, "probability": pl.Float64, "reasons": pl.List(pl.Utf8)})
    elif labels is None:
        labels = label_followers(followers, method=method, as_of=as_of_time(snapshot), inactive_days=inactive_days, platform=snapshot.platform)
    tally = LabelTally()
    if labels.height:
        tally.add(labels, followers)
        if method == "model":
            tally.add_profiles(followers, snapshot.platform, as_of_time(snapshot))
    report = build_report(snapshot, tally, method=method, inactive_days=inactive_days, confidence=confidence,
                          first_reject=first_reject, known_counts=counts, as_of=as_of_time(snapshot))
    with_handles = followers.select("follower_id", "handle").join(labels, on="follower_id", how="right")
    return AuditResult(report=report, labels=with_handles.select("follower_id", "handle", "label", "probability", "reasons"))


def as_of_time(snapshot: Snapshot) -> datetime:
    """The time profiles are judged at when a row has no ``observed_at``: the snapshot's time."""
    return snapshot.taken_at or datetime.now(UTC)


def audit_snapshot(
    store: Store,
    ref: int | str,
    *,
    method: str = "rules",
    inactive_days: int = DEFAULT_INACTIVE_DAYS,
    confidence: float = 0.95,
    save: bool = True,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
    mass_threshold: int = MASS_THRESHOLD,
    early_scan: EarlyScan | None = None,
    row_check: RowCheck | None = None,
) -> AuditResult:
    """Audit a stored snapshot (by id or account name), streaming in batches, and store its labels.

    ``method`` defaults to the transparent rules here (no model is loaded); the CLI's default is the
    model (``classify.METHODS[0]``): pass ``method="model"`` for the corrected shares.

    Memory stays bounded by ``batch_rows`` whatever the snapshot's size; labels are committed batch
    by batch. ``progress`` is called with each batch's size. ``early_scan``: the burst scan started on
    the file before it was imported (``bursts.attach.start_early_scan``), used when it is this
    snapshot's file. ``row_check``: the check of a file read in place before its rows' ids and texts
    were checked (``ingest.import_file(check_rows=False)``), fed each batch as it is read; the caller
    asks it whether they passed.
    """
    snapshot = store.snapshot(ref)
    if snapshot.n_followers == 0:
        rejected = f" ({snapshot.n_rejects:,} rows were rejected)" if snapshot.n_rejects else ""
        raise InputError(
            f"snapshot {snapshot.snapshot_id} has no followers to audit{rejected}",
            f"see `followaudit rejects {snapshot.snapshot_id}`, then re-import with --platform/--format/--map",
        )
    as_of = as_of_time(snapshot)
    tally = LabelTally()
    save = save and not store.read_only
    footer = store.parquet_footer(snapshot.snapshot_id)  # a file read in place: its footer counts the nulls
    counts = known_counts_from_footer(footer) if footer is not None else None
    if counts is None:
        counts = {k: int(v or 0) for k, v in (store.row(known_counts_sql(), [snapshot.snapshot_id]) or {}).items()}
    too_little = withheld_reason(fields_known(counts), counts.get("n", 0), snapshot.platform) is not None
    rejects = store.rejects(snapshot.snapshot_id).head(1) if snapshot.n_rejects else None
    first = rejects.to_dicts()[0] if rejects is not None and rejects.height else None
    # DuckDB would otherwise cache every block it reads (80% of RAM by default); nothing is read twice
    # here, so a cap keeps a 10M-follower audit's peak memory down (larger work spills to disk).
    with store.memory_limit(AUDIT_MEMORY_LIMIT), ThreadPoolExecutor(1, thread_name_prefix="followaudit-labels") as writer, \
            ThreadPoolExecutor(1, thread_name_prefix="followaudit-bursts") as burst_thread, \
            ThreadPoolExecutor(1, thread_name_prefix="followaudit-count") as counter, \
            ThreadPoolExecutor(LABELLING_AHEAD, thread_name_prefix="followaudit-label") as labeller:
        # Stages overlap on two cores: the next batch is read (a thread), two are labelled, the last
        # one is counted and its labels written (a thread each), and the follow order is scanned for
        # bursts (which needs no labels) meanwhile; Polars, DuckDB, NumPy and the kernels release the GIL.
        if save:  # before the scan starts reading in its thread: this replaces the label files
            store.delete_labels(snapshot.snapshot_id, method)
        alongside = not too_little and snapshot.n_followers <= SCAN_ALONGSIDE_MAX
        scanning = None
        if alongside:  # the scan the CLI started on the file while it was checked, if it is this one's
            scanning = (early_scan.result if early_scan is not None and early_scan.applies_to(store, snapshot.snapshot_id)
                        else burst_thread.submit(scan_follow_order, store, snapshot.snapshot_id))
        # members of the bursts and their labels from the batches themselves, when the labels are stored
        members = MembersWhileLabelling(scanning) if scanning is not None and save else None
        # the platform's evidence and the reach sections' inputs need no labels: from a file read in
        # place, read meanwhile on a cursor of their own (after the scan where it runs in that thread);
        # stored rows, and past the size the scan runs alongside, after the last batch (the follow
        # times of every follower, or DuckDB's reads, beside the batches lift the peak)
        gathering = (burst_thread.submit(_gather_inputs, store, snapshot, method, confidence, inactive_days)
                     if footer is not None and alongside else None)
        read, fill = label_reads(snapshot, members=members is not None, row_check=row_check is not None)
        reader = (prefetch(batch.with_columns(fill) for batch in store.iter_followers(snapshot.snapshot_id, read, batch_rows))
                  if not too_little else iter(()))
        written: Future | None = None
        counting: Future | None = None

        def label(batch: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
            computed: dict = {}
            labels = label_followers(batch, method=method, as_of=as_of, inactive_days=inactive_days, platform=snapshot.platform,
                                     features_out=computed)
            return labels, computed

        for batch, (labels, computed) in in_order(labeller, label, reader, LABELLING_AHEAD):
            tally.audience.update(batch_audience_counts(batch, labels, mass_threshold))
            if method == "model":
                tally.add_profiles(batch, snapshot.platform, as_of, computed.get("X"), computed.get("model"),
                                   stride=profile_stride(snapshot.n_followers))
            if counting is not None:
                counting.result()  # one batch at a time: bounded memory
            # the label counts and the bursts' members in a thread of their own, while the next
            # batch is labelled (it holds only the labels and the members' three columns)
            counting = counter.submit(_count_batch, tally, labels, computed.get("reason_counts"), members,
                                      batch.select(MembersWhileLabelling.COLUMNS) if members is not None else None,
                                      row_check, batch.select(TRIMMED) if row_check is not None else None)
            if written is not None:
                written.result()  # one batch in flight: bounded memory, labels stored in order
            if save:
                written = writer.submit(_store_labels, store, snapshot.snapshot_id, method, labels)
            if progress is not None:
                progress(labels.height)
        if counting is not None:
            counting.result()
        # At once: the estimate (its bootstrap: NumPy) from the counts, beside the last batch's write;
        # then the bursts' members and their stored reasons (a DuckDB cursor of their own).
        building = counter.submit(build_report, snapshot, tally, method=method, inactive_days=inactive_days, confidence=confidence,
                                  first_reject=first, known_counts=counts, as_of=as_of)
        if written is not None:
            written.result()
        def resolve() -> ResolvedBursts:  # the members' reasons are then stored in the writer's thread
            return resolve_bursts(store, snapshot.snapshot_id, method=method, save=save, labelled=members,
                                  scanned=scanning.result if scanning is not None else None, store_in=writer)

        # with the members found while labelling, resolving reads nothing through this connection
        resolving = writer.submit(resolve) if members is not None else None
        evidence, inputs = (gathering.result() if gathering is not None
                            else _gather_inputs(store, snapshot, method, confidence, inactive_days))
        bursts = resolving.result() if resolving is not None else resolve()
        report = building.result()
        finish_report(store, snapshot, report, method=method, save=save, mass_threshold=mass_threshold,
                      audience_counts=dict(tally.audience) if tally.audience else None, bursts=bursts, evidence=evidence,
                      inputs=inputs)
        if bursts.stored is not None:  # stored while the report was finished: the labels are whole now
            bursts.stored.result()
    return AuditResult(report=report)


def label_reads(snapshot: Snapshot, *, members: bool, row_check: bool) -> tuple[list[str], list[pl.Expr]]:
    """The columns an audit decodes to label a snapshot, and constants for the others (each text
    column costs decoding for every follower): none of ``UNREAD_COLUMNS`` but the follow rank for the
    bursts' members and the truth for a file's row check; the platform and account only when the
    snapshot does not name its platform (labelling then reads each row's)."""
    skip = set(UNREAD_COLUMNS)
    if members:
        skip -= set(MembersWhileLabelling.COLUMNS)
    if row_check:
        skip -= set(TRIMMED)
    if snapshot.platform is not None:
        skip |= {"platform", "account"}
    read = [c for c in LABEL_INPUT_COLUMNS if c not in skip]
    fill = [pl.lit(snapshot.platform if c == "platform" else None, SCHEMA[c]).alias(c) for c in LABEL_INPUT_COLUMNS if c in skip]
    return read, fill


def prepare() -> None:
    """What the first batch would otherwise wait for (the compiled kernels), done ahead: the CLI calls
    it in the thread that imports this module while the file is checked."""
    prepare_kernels()


def in_order(pool: ThreadPoolExecutor, work: Callable[[T], R], items: Iterable[T], ahead: int) -> Iterator[tuple[T, R]]:
    """``(item, work(item))`` for each of ``items`` in order, with up to ``ahead`` items worked on at once
    in ``pool`` (a batch's labelling is partly serial Python: two at once keep both cores busy)."""
    pending: deque[tuple[T, Future]] = deque()
    for item in items:
        pending.append((item, pool.submit(work, item)))
        if len(pending) >= ahead:
            done, future = pending.popleft()
            yield done, future.result()
    while pending:
        done, future = pending.popleft()
        yield done, future.result()


def _count_batch(tally: LabelTally, labels: pl.DataFrame, reason_counts: Counter | None,
                 members: MembersWhileLabelling | None, member_columns: pl.DataFrame | None,
                 row_check: RowCheck | None = None, checked_columns: pl.DataFrame | None = None) -> None:
    """Count one labelled batch into ``tally``, look for the bursts' members among its rows, and
    check its ids and texts for a file read in place before they were (``row_check``)."""
    tally.add(labels, reason_counts=reason_counts)
    if members is not None and member_columns is not None:
        members.add(member_columns, labels)
    if row_check is not None and checked_columns is not None:
        row_check.add(checked_columns)


def _store_labels(store: Store, snapshot_id: int, method: str, labels: pl.DataFrame) -> None:
    # One commit per batch: DuckDB keeps uncommitted rows in memory, so one transaction over 10M
    # labels would cost GBs. A run cut short leaves partial labels, which readers (report, web)
    # ignore because they do not cover every follower; the next audit redoes them.
    with store.transaction():
        store.append_labels(snapshot_id, method, labels)


def _gather_inputs(store: Store, snapshot: Snapshot, method: str, confidence: float,
                   inactive_days: int) -> tuple[dict[str, Any], SectionInputs]:
    """``snapshot_evidence`` and ``section_inputs``, read through ``store.reader()`` (another thread)."""
    reader = store.reader()
    try:
        # a file read in place: its follow times read once (Polars) for the evidence and the growth
        # section; stored rows are counted in DuckDB, which need not hand every row over
        in_place = store.in_place_source(snapshot.snapshot_id) is not None
        times = follow_times(reader, snapshot.snapshot_id) if in_place else None
        return (snapshot_evidence(reader, snapshot, method=method, confidence=confidence, inactive_days=inactive_days,
                                  times=times),
                section_inputs(reader, snapshot, daily_follows(times) if times is not None else None))
    finally:
        reader.close()


def snapshot_evidence(store: Store, snapshot: Snapshot, *, method: str, confidence: float, inactive_days: int,
                      times: pl.DataFrame | None = None) -> dict[str, Any]:
    """The platform's own evidence about these followers (``reach.platform_evidence``), as the report
    shows it; ``times``: their ``follow_times``, when read already."""
    return platform_evidence(store, snapshot, method=method, confidence=confidence, as_of=as_of_time(snapshot),
                             inactive_days=inactive_days, times=times)


def finish_report(
    store: Store, snapshot: Snapshot, report: Report, *, method: str, save: bool, mass_threshold: int = MASS_THRESHOLD,
    audience_counts: dict[str, int] | None = None, bursts: ResolvedBursts | None = None, evidence: dict[str, Any] | None = None,
    inputs: SectionInputs | None = None,
) -> None:
    """What every audit adds after labelling — the CLI, ``followaudit report`` and the web call this.

    Bought batches from follow order first (their members' reasons are stored when ``save``), then
    the reach sections (engagement, what-if, likers, growth, comparison, views), because growth sets
    its spikes beside the bursts. What ``audit_snapshot`` computed on the way is passed in rather than
    recomputed: ``audience_counts``, ``bursts`` (``resolve_bursts``: the scan, run meanwhile, with its
    members' labels and reasons), ``evidence`` (``snapshot_evidence``) and ``inputs``
    (``reach.sections.section_inputs``).
    """
    if evidence is None:
        evidence = snapshot_evidence(store, snapshot, method=method, confidence=report.confidence_level, inactive_days=report.inactive_days)
    report.evidence.update(evidence)
    report.notes.extend(evidence_notes(evidence))
    report.audience = audience_section(store, snapshot, method=method, confidence=report.confidence_level, threshold=mass_threshold,
                                       counts=audience_counts)
    if bursts is None:
        bursts = resolve_bursts(store, snapshot.snapshot_id, method=method, save=save)
    report_bursts(report, bursts)
    attach_reviewed(store, snapshot, report)  # before the headline is quoted: a reviewed sample can be it
    if save:  # the headline, for comparisons with this account from other audits (reach/comparison.py)
        fake = report.headline_shares().get("fake")
        quoted = {"withheld": True} if report.withheld else (
            {"share": fake.share, "low": fake.low, "high": fake.high, "method": fake.method} if fake else {})
        settings = store.snapshot(snapshot.snapshot_id).settings
        settings["headline"] = {**(settings.get("headline") or {}), method: quoted}
        store.update_snapshot(snapshot.snapshot_id, settings=settings)
    report.sections.update(build_sections(store, snapshot, report, auditor=audit_frame, inputs=inputs))
