"""The shipped LightGBM trees, scored without LightGBM: raw scores, leaves and path credits.

An audit needs two things from the trees for every follower: the raw score (log-odds), and the
path credits that become its reasons (``reasons.py``). Importing LightGBM (with scikit-learn and
SciPy) costs about two seconds on every run, so this module reads the model *text* (the same file
LightGBM writes) and scores it itself, two ways:

* ``TreeModel.score`` (what labelling uses): one pass per model, written out as C with the model's
  constants, compiled once with the system's C compiler (``gcc -O3``) and cached beside the other
  compiled artefacts (``cache_dir()``). It gives the raw scores and, for the rows to explain, the
  top path-credit groups. The pass finds the leaves through interval masks (``INTERVAL_KERNEL``:
  no branch on the data; ~0.13 CPU-s per million followers for 100 trees of 15 leaves, 0.16 with
  the reasons of the fake ones), or, for a model the masks cannot express (a tree of more than 16
  leaves, a split inside the zero band), through the trees as straight-line C (twice that).
* ``TreeModel.walk``: one generic C loop over flat node arrays (the same for every model), which can
  also return every tree's leaf and the summed credits; used by tests and analysis.

Without a compiler both run level by level in NumPy (slower, identical results). The walk follows
LightGBM's ``Tree::NumericalDecision`` exactly: NaN becomes 0 unless the node's missing type is NaN;
a missing value (NaN, or zero for missing type "zero") goes to the node's default side; otherwise
``value <= threshold`` goes left. Leaf values are summed in tree order in float64, so raw scores
equal LightGBM's bit for bit (checked by the tests against LightGBM's own predictor).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..native.build import compiled

NODE_DTYPE = np.dtype([("thr", "<f8"), ("feat", "<i4"), ("left", "<i4"), ("right", "<i4"), ("kind", "<i4")])
ZERO_THRESHOLD = 1e-35  # LightGBM's kZeroThreshold
DEFAULT_LEFT = 2  # decision_type bit 1
MISSING_ZERO, MISSING_NAN = 1, 2  # decision_type bits 2-3

C_SOURCE = r"""
#include <math.h>
#include <stdint.h>

typedef struct { double thr; int32_t feat; int32_t left; int32_t right; int32_t kind; } node_t;
/* kind: 0 plain split (NaN counts as 0); 1 missing = zero; 2 missing = NaN; +4 when missing goes left */

static inline int32_t step(const node_t* nd, const double* x) {
    double v = x[nd->feat];
    int32_t kind = nd->kind;
    if (kind == 0) return (v <= nd->thr || (isnan(v) && 0.0 <= nd->thr)) ? nd->left : nd->right;
    int32_t mt = kind & 3;
    if (isnan(v) && mt != 2) v = 0.0;
    if ((mt == 1 && fabs(v) <= 1e-35) || (mt == 2 && isnan(v))) return (kind & 4) ? nd->left : nd->right;
    return v <= nd->thr ? nd->left : nd->right;
}

/* One pass over the rows: raw score, optionally the leaf of every tree and the summed path credits. */
void walk(const double* X, int64_t n, int32_t nf, int32_t n_trees,
          const int32_t* node_off, const int32_t* leaf_off, const node_t* nodes,
          const double* leaf_value, const double* credit, int32_t groups,
          double* raw, int32_t* leaves, double* contrib)
{
    #pragma omp parallel for schedule(static, 4096)
    for (int64_t i = 0; i < n; i++) {
        const double* x = X + i * (int64_t)nf;
        double s = 0.0;
        double* c = contrib ? contrib + i * (int64_t)groups : 0;
        if (c) for (int32_t g = 0; g < groups; g++) c[g] = 0.0;
        for (int32_t t = 0; t < n_trees; t++) {
            int32_t leaf = 0;
            int32_t base = node_off[t];
            if (base >= 0) {
                const node_t* tree = nodes + base;
                int32_t next = step(tree, x);
                while (next >= 0) next = step(tree + next, x);
                leaf = ~next;
            }
            int64_t L = (int64_t)leaf_off[t] + leaf;
            s += leaf_value[L];
            if (leaves) leaves[i * (int64_t)n_trees + t] = leaf;
            if (c) {
                const double* cr = credit + L * groups;
                for (int32_t g = 0; g < groups; g++) c[g] += cr[g];
            }
        }
        raw[i] = s;
    }
}
"""

def default_threads() -> int:
    """Threads of one scoring pass: ``OMP_NUM_THREADS`` when set (a Dask worker's budget), else up to 2 cores."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2, cores)


def _library() -> Any | None:
    """The compiled walk (built once per machine and cached); None when no C compiler works."""
    return compiled("lib", "treewalk", C_SOURCE, [["-O3", "-fopenmp"], ["-O3"]], restypes={"walk": None})


def rank_credit(credit: np.ndarray, fake: np.ndarray, k: int, min_credit: float) -> np.ndarray:
    """rows × k column indices of the credit pushing hardest towards each row's label (up for a
    fake row, down for the others), stable on ties; -1 where that credit is below ``min_credit``."""
    toward = np.where(fake[:, None], credit, -credit)
    order = np.argsort(-toward, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(toward, order, axis=1) >= min_credit, order, -1)


# The model's own trees as straight-line C (for a model the interval masks below cannot express):
# every split is one comparison against a constant
# (thresholds written as exact hexadecimal floats), so no node record is loaded and the compiler
# lays the branches out; ~4x less CPU than the generic loop above. The driver around the trees adds
# the leaf values in tree order (the same float64 sum as LightGBM) and, for the rows asked for,
# sums each leaf's path credit per group and picks the top groups, all in the same pass.
SCORE_DRIVER = r"""
void score(const double* const* cols, int64_t lo, int64_t hi, int64_t step, const double* leaf_value, double* raw,
           const double* credit, int32_t groups, double threshold, int32_t mode, int32_t k, double min_credit,
           int8_t* top)
{
    /* Rows lo..hi-1; feature f of row i is cols[f][i * step] (one array per feature, or a matrix).
       mode 0: scores only; 1: top groups of the rows scoring >= threshold; 2: of every row.
       A row's groups are ranked by credit towards its side (>= threshold: +credit, else -credit),
       largest first, ties to the lower group; only credits >= min_credit are kept, -1 elsewhere.
       credit: WIDTH values per leaf, zero past `groups` (a fixed width the compiler vectorises;
       adding an exact zero changes no sum, since a sum that starts at +0.0 never becomes -0.0). */
    int32_t L[N_TREES];
    for (int64_t i = lo; i < hi; i++) {
        leaves_of(cols, i * step, L);
        double s = 0.0;
        for (int32_t t = 0; t < N_TREES; t++) s += leaf_value[L[t]];
        raw[i] = s;
        if (mode == 0) continue;
        int8_t* out = top + i * (int64_t)k;
        for (int32_t q = 0; q < k; q++) out[q] = -1;
        int fake = s >= threshold;
        if (mode == 1 && !fake) continue;
        double c[WIDTH];
        for (int32_t g = 0; g < WIDTH; g++) c[g] = 0.0;
        for (int32_t t = 0; t < N_TREES; t++) {
            const double* cr = credit + (int64_t)L[t] * WIDTH;
            for (int32_t g = 0; g < WIDTH; g++) c[g] += cr[g];
        }
        if (!fake) for (int32_t g = 0; g < WIDTH; g++) c[g] = -c[g];
        uint32_t taken = 0;
        for (int32_t q = 0; q < k; q++) {
            int32_t best = -1;
            for (int32_t g = 0; g < groups; g++)
                if (!(taken >> g & 1u) && (best < 0 || c[g] > c[best])) best = g;
            if (best < 0 || !(c[best] >= min_credit)) break;
            taken |= 1u << best;
            out[q] = (int8_t)best;
        }
    }
}
"""
# Faster than the straight-line trees (~2x less CPU), the same leaves: QuickScorer's idea (Lucchese
# et al. 2015) turned round. For every feature the trees read, its distinct thresholds cut the
# values into intervals (plus NaN, and the band |x| <= 1e-35 where a node treats zero as missing);
# within one interval every node on that feature decides the same way, so each interval has a
# precomputed mask per tree: the leaves its decisions leave possible. ANDing one mask per feature
# leaves exactly one leaf bit per tree (every other leaf sits below some node that sends the row
# the other way). Where the straight-line trees mispredict a branch at most splits, here the
# interval is found by counting comparisons (vectors of four: the block of thresholds, then the
# thresholds in it) and the leaf is the exponent of its bit as a float. Rows go SUB at a time;
# credits are summed OUTER rows at a time, TB trees at a time (their credit rows stay in the
# first-level cache) and JB rows at a time (independent chains of additions), each row's sums in
# tree order. The kernel is compiled twice in one file, the second copy for AVX2, picked at run
# time on x86-64 (the same numbers either way: no multiplications, and additions in the same order).
INTERVAL_KERNEL = r"""
static inline __attribute__((always_inline)) $ATTR uint32_t below_$SFX(const double* P, int np, const double* Q, int b, double x)
{
    /* Thresholds below x: the pivots (the last threshold of each block of b) below x give the
       block, then the thresholds below x in that block. Padding is +inf (never below x). */
    $VD xv;
    for (int j = 0; j < $DL; j++) xv[j] = x;
    int64_t block = 0, n = 0;
    for (int j = 0; j < np; j += $DL) { $VD p; memcpy(&p, P + j, sizeof p); block += $TRUE(p < xv); }
    const double* q = Q + block * b;
    for (int j = 0; j < b; j += $DL) { $VD p; memcpy(&p, q + j, sizeof p); n += $TRUE(p < xv); }
    return (uint32_t)(block * b + n);
}

static $ATTR void leaves_$SFX(const double* const* cols, int64_t i0, int64_t step, int nb, uint16_t L[SUB][NTP])
{
    const uint16_t* mask[NF][SUB];
$CLASSES
    for (int r = 0; r < SUB; r++) {
        $VU m[NTP / $UL];
        memcpy(m, mask[0][r], sizeof m);
        for (int f = 1; f < NF; f++) {
            const $VU* p = (const $VU*)mask[f][r];
            for (int j = 0; j < NTP / $UL; j++) m[j] &= p[j];
        }
        uint16_t bit[NTP];
        memcpy(bit, m, sizeof bit);
        for (int j = 0; j < NTP; j++) {  /* one bit per tree: its position is the float's exponent */
            float as_float = (float)bit[j];
            uint32_t e;
            memcpy(&e, &as_float, sizeof e);
            L[r][j] = (uint16_t)(FIRST_LEAF[j] + (e >> 23) - 127);
        }
    }
}

static $ATTR void score_$SFX(const double* const* cols, int64_t lo, int64_t hi, int64_t step, const double* leaf_value,
                           double* raw, const double* credit, int32_t groups, double threshold, int32_t mode, int32_t k,
                           double min_credit, int8_t* top)
{
    uint16_t L[SUB][NTP] __attribute__((aligned(64)));
    uint16_t F[OUTER + $JB][N_TREES];  /* leaves of the rows to explain */
    int64_t row[OUTER];
    double side[OUTER];
    double C[OUTER + $JB][WIDTH] __attribute__((aligned(64)));
    for (int64_t o = lo; o < hi; o += OUTER) {
        int64_t end = hi - o < OUTER ? hi : o + OUTER;
        int ne = 0;
        for (int64_t i0 = o; i0 < end; i0 += SUB) {
            int nb = end - i0 < SUB ? (int)(end - i0) : SUB;
            leaves_$SFX(cols, i0, step, nb, L);
            double s[SUB];
            for (int r = 0; r < SUB; r++) s[r] = 0.0;
            for (int t = 0; t < N_TREES; t++)
                for (int r = 0; r < SUB; r++) s[r] += leaf_value[L[r][t]];
            for (int r = 0; r < nb; r++) raw[i0 + r] = s[r];
            if (mode == 0) continue;
            for (int r = 0; r < nb; r++) {
                int8_t* out = top + (i0 + r) * (int64_t)k;
                for (int32_t q = 0; q < k; q++) out[q] = -1;
                if (mode == 2 || s[r] >= threshold) {
                    memcpy(F[ne], L[r], sizeof F[ne]);
                    row[ne] = i0 + r;
                    side[ne] = s[r];
                    ne++;
                }
            }
        }
        if (ne == 0) continue;
        for (int j = ne; j < (ne + $JB - 1) / $JB * $JB; j++) memcpy(F[j], F[0], sizeof F[j]);
        memset(C, 0, sizeof C);
        for (int t0 = 0; t0 < N_TREES; t0 += TB) {
            int t1 = t0 + TB < N_TREES ? t0 + TB : N_TREES;
            for (int j0 = 0; j0 < ne; j0 += $JB) {
                $VD c[$JB][WIDTH / $DL];
                memcpy(c, C[j0], sizeof c);
                for (int t = t0; t < t1; t++)
                    for (int j = 0; j < $JB; j++) {
                        const double* cr = credit + (int64_t)F[j0 + j][t] * WIDTH;
                        for (int g = 0; g < WIDTH / $DL; g++) { $VD v; memcpy(&v, cr + g * $DL, sizeof v); c[j][g] += v; }
                    }
                memcpy(C[j0], c, sizeof c);
            }
        }
        for (int j = 0; j < ne; j++) {
            double* c = C[j];
            if (!(side[j] >= threshold)) for (int32_t g = 0; g < WIDTH; g++) c[g] = -c[g];
            int8_t* out = top + row[j] * (int64_t)k;
            uint32_t taken = 0;
            for (int32_t q = 0; q < k; q++) {
                int32_t best = -1;
                double most = 0.0;
                for (int32_t g = 0; g < groups; g++) {  /* the largest not taken, ties to the lower group */
                    int better = (!((taken >> g) & 1u)) & ((best < 0) | (c[g] > most));
                    best = better ? g : best;
                    most = better ? c[g] : most;
                }
                if (best < 0 || !(c[best] >= min_credit)) break;
                taken |= 1u << best;
                out[q] = (int8_t)best;
            }
        }
    }
}
"""
INTERVAL_DISPATCH = r"""
int portable_only = 0;  /* set by the tests, to run the portable copy on a machine with AVX2 */

void score(const double* const* cols, int64_t lo, int64_t hi, int64_t step, const double* leaf_value, double* raw,
           const double* credit, int32_t groups, double threshold, int32_t mode, int32_t k, double min_credit,
           int8_t* top)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!portable_only && __builtin_cpu_supports("avx2")) {
        score_avx2(cols, lo, hi, step, leaf_value, raw, credit, groups, threshold, mode, k, min_credit, top);
        return;
    }
#endif
    score_base(cols, lo, hi, step, leaf_value, raw, credit, groups, threshold, mode, k, min_credit, top);
}
"""
# (suffix, attribute, uint16 vector type, its lanes, double vector, int64 vector, doubles per vector,
#  rows summed together, lanes true in a comparison vector v)
INTERVAL_VARIANTS = (
    ("base", "", "u16x8", 8, "f64x2", "i64x2", 2, 2, "(-(v)[0] - (v)[1])"),
    ("avx2", '__attribute__((target("avx2,popcnt")))', "u16x16", 16, "f64x4", "i64x4", 4, 4,
     "__builtin_popcount(__builtin_ia32_movmskpd256((f64x4)(v)))"),
)
LINEAR_MAX = 16  # a feature with at most this many thresholds counts them all, for SUB rows at once

MAX_GROUPS = 16  # groups of path credit the compiled ranking handles (reasons use ~12 aspects)


def credit_width(groups: int) -> int:
    """Credit values per leaf in the compiled pass: ``groups`` rounded up to a multiple of 4 (the
    padding is zeros; a narrower row of credits is less to add up for every explained follower)."""
    return min(MAX_GROUPS, max(4, -(-groups // 4) * 4))


def _c_float(value: float) -> str:
    if np.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    return f"({float(value).hex()})"


def _columns(X: np.ndarray | list[np.ndarray], n_features: int) -> list[np.ndarray]:
    """One float64 array per feature, all with the same row stride (views of a matrix, no copy)."""
    if isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"X must have {n_features} columns, got shape {X.shape}")
        if X.dtype != np.float64 or X.strides[0] % 8:
            X = np.ascontiguousarray(X, dtype=np.float64)
        return [X[:, j] for j in range(n_features)]
    if len(X) != n_features:
        raise ValueError(f"expected {n_features} feature columns, got {len(X)}")
    cols = [np.asarray(c, dtype=np.float64) for c in X]
    if len({c.shape for c in cols}) > 1 or any(c.ndim != 1 for c in cols):
        raise ValueError("feature columns must be 1-D and of one length")
    if len({c.strides for c in cols}) > 1 or cols[0].strides[0] % 8:
        cols = [np.ascontiguousarray(c) for c in cols]
    return cols


def _blocks(m: int) -> tuple[int, int]:
    """``(block, blocks)`` for counting ``m`` sorted thresholds in two steps: the fewest vectors of
    four to compare (the pivots, one per block but the last, then one block)."""
    block = min(range(4, 4 * (m // 4 + 2), 4), key=lambda b: (-(-(-(-m // b) - 1) // 4) + b // 4, b))
    return block, -(-m // block)


def _aligned_zeros(n: int) -> np.ndarray:
    """``n`` float64 zeros starting on a 64-byte boundary (no vector load of a row splits a cache line)."""
    buffer = np.zeros(n + 8, dtype=np.float64)
    start = (-buffer.ctypes.data % 64) // 8
    return buffer[start:start + n]


def _ints(line: str) -> np.ndarray:
    return np.array(line.split(), dtype=np.int64) if line else np.zeros(0, dtype=np.int64)


def _floats(line: str) -> np.ndarray:
    return np.array(line.split(), dtype=np.float64) if line else np.zeros(0, dtype=np.float64)


@dataclass
class TreeModel:
    """Flat node arrays of a binary LightGBM model (one tree per iteration, numerical splits)."""

    feature_names: tuple[str, ...]
    node_off: np.ndarray  # first node of each tree in the node arrays; -1 for a one-leaf tree
    leaf_off: np.ndarray  # first leaf of each tree in the leaf arrays
    feat: np.ndarray
    thr: np.ndarray
    dtype: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    internal_value: np.ndarray
    _credit: dict[Any, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_text(cls, text: str) -> TreeModel:
        header, _, body = text.partition("\nTree=")
        head = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
        if int(head.get("num_tree_per_iteration", 1)) != 1:
            raise ValueError("only binary / regression models (one tree per iteration) are supported")
        names = tuple(head["feature_names"].split())
        node_off, leaf_off = [], []
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feat", "thr", "dtype", "left", "right", "leaf", "internal")}
        nodes = leaves = 0
        for block in ("Tree=" + body).split("\nTree=")[0:]:
            if not block.strip() or block.startswith("end of trees"):
                continue
            kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
            if "num_leaves" not in kv:
                continue
            if int(kv.get("num_cat", 0)):
                raise ValueError("categorical splits are not supported")
            if int(kv.get("is_linear", 0)):
                raise ValueError("linear trees are not supported")
            n_leaves = int(kv["num_leaves"])
            leaf_off.append(leaves)
            parts["leaf"].append(_floats(kv["leaf_value"]))
            leaves += n_leaves
            if n_leaves == 1:
                node_off.append(-1)
                continue
            node_off.append(nodes)
            parts["feat"].append(_ints(kv["split_feature"]))
            parts["thr"].append(_floats(kv["threshold"]))
            parts["dtype"].append(_ints(kv["decision_type"]))
            parts["left"].append(_ints(kv["left_child"]))
            parts["right"].append(_ints(kv["right_child"]))
            parts["internal"].append(_floats(kv["internal_value"]))
            nodes += n_leaves - 1

        def cat(key: str, dtype: Any) -> np.ndarray:
            return np.ascontiguousarray(np.concatenate(parts[key]) if parts[key] else np.zeros(0), dtype=dtype)

        return cls(
            feature_names=names,
            node_off=np.asarray(node_off, dtype=np.int32),
            leaf_off=np.asarray(leaf_off, dtype=np.int32),
            feat=cat("feat", np.int32),
            thr=cat("thr", np.float64),
            dtype=cat("dtype", np.uint8),
            left=cat("left", np.int32),
            right=cat("right", np.int32),
            leaf_value=cat("leaf", np.float64),
            internal_value=cat("internal", np.float64),
        )

    @property
    def n_trees(self) -> int:
        return len(self.node_off)

    def _nodes(self) -> np.ndarray:
        """The nodes as the C loop reads them: one 24-byte record per node (threshold, feature, children, kind)."""
        if "nodes" not in self._credit:
            mt = (self.dtype.astype(np.int32) >> 2) & 3
            kind = np.where(mt == 0, 0, mt + np.where((self.dtype & DEFAULT_LEFT) != 0, 4, 0)).astype(np.int32)
            # A plain node (missing type None) reads NaN as 0, whichever side is its default.
            records = np.zeros(len(self.feat), dtype=NODE_DTYPE)
            records["thr"], records["feat"], records["left"], records["right"], records["kind"] = (
                self.thr, self.feat, self.left, self.right, kind)
            self._credit["nodes"] = records
        return self._credit["nodes"]

    def c_source(self, width: int = MAX_GROUPS) -> str:
        """This model's scoring pass as C: the interval masks (``_interval_source``) where the model
        allows them, else the trees as straight-line C (``leaves_of``); either way a driver that adds
        ``width`` credit values per leaf (``credit_width``)."""
        if ("c_source", width) not in self._credit:
            tables = self._interval_masks()
            source = self._interval_source(width, tables) if tables else self._straight_source(width)
            self._credit["c_source", width] = source
        return self._credit["c_source", width]

    def straight_line(self) -> TreeModel:
        """The same model with the interval masks switched off: ``score`` runs the straight-line
        trees (the reference the tests and ``benchmarks/bench_trees.py`` compare the masks with)."""
        other = TreeModel(**{name: getattr(self, name) for name in self.__dataclass_fields__ if name != "_credit"})
        other._credit["intervals"] = None  # type: ignore[assignment]
        return other

    def _interval_masks(self) -> list[tuple[int, np.ndarray, np.ndarray, bool]] | None:
        """Per feature the trees read: ``(feature, sorted distinct thresholds, masks, zero band)``.

        ``masks[c, t]`` holds the leaves of tree ``t`` that the decisions of its nodes on this
        feature leave possible for a value in class ``c``: intervals 0..m (``c`` thresholds below
        the value), then NaN, then (when some node treats zero as missing) |x| <= 1e-35. None when
        the model cannot be written this way (a tree of more than 16 leaves, a threshold inside
        the zero band that a plain node compares against, no split at all, more than 65,535
        leaves or 8 MB of masks): the straight-line trees then score it.
        """
        if "intervals" in self._credit:
            return self._credit["intervals"]  # type: ignore[return-value]
        self._credit["intervals"] = None  # type: ignore[assignment]
        n_leaves = np.diff(np.r_[self.leaf_off, len(self.leaf_value)])
        # Leaves are numbered in 16 bits; past ~8 MB of masks the C source is too big to compile fast.
        mask_bytes = 2 * (len(np.unique(np.c_[self.feat, self.thr], axis=0)) + 3 * len(np.unique(self.feat))) * self.n_trees
        if (not len(self.feat) or n_leaves.max() > 16 or np.isnan(self.thr).any() or len(self.leaf_value) > 0xFFFF
                or mask_bytes > 8 << 20):
            return None
        tree = np.zeros(len(self.feat), dtype=np.int64)  # tree of each node
        under = np.zeros((len(self.feat), 2), dtype=np.uint64)  # leaf bits under its left / right child
        for t in np.flatnonzero(self.node_off >= 0):
            base, count = int(self.node_off[t]), int(n_leaves[t]) - 1
            tree[base:base + count] = t
            order, stack = [], [0]
            while stack:  # parents before children; filled in reverse, children first
                node = stack.pop()
                order.append(node)
                stack += [int(c) for c in (self.left[base + node], self.right[base + node]) if c >= 0]
            for node in reversed(order):
                for side, child in enumerate((self.left[base + node], self.right[base + node])):
                    under[base + node, side] = (1 << int(~child)) if child < 0 else int(under[base + child].sum())
        missing = (self.dtype.astype(np.int64) >> 2) & 3
        default_left = (self.dtype & DEFAULT_LEFT) != 0
        every = (np.uint64(1) << n_leaves.astype(np.uint64)) - np.uint64(1)  # all leaves of each tree
        tables = []
        for f in sorted({int(v) for v in self.feat}):
            nodes = np.flatnonzero(self.feat == f)
            thr, zero = self.thr[nodes], missing[nodes] == MISSING_ZERO
            cuts = np.unique(thr)
            rank = np.searchsorted(cuts, thr)
            # Which way each node sends a value of each class (True: left); a plain node reads NaN as 0.0.
            left = [rank >= c for c in range(len(cuts) + 1)]
            left.append(np.where(missing[nodes] == 0, 0.0 <= thr, default_left[nodes]))
            if zero.any():
                inside = (-ZERO_THRESHOLD <= thr) != (ZERO_THRESHOLD <= thr)
                if (inside & ~zero).any():
                    return None
                left.append(np.where(zero, default_left[nodes], ZERO_THRESHOLD <= thr))
            going = np.array(left)
            # A node's decision rules out the leaves under the child it does not take.
            ruled_out = np.where(going, under[nodes, 1], under[nodes, 0])
            masks = np.tile(every, (len(going), 1))
            for j, node in enumerate(nodes):
                masks[:, tree[node]] &= ~ruled_out[:, j]
            tables.append((f, cuts, masks.astype(np.uint16), bool(zero.any())))
        self._credit["intervals"] = tables  # type: ignore[assignment]
        return tables

    def _interval_source(self, width: int, tables: list[tuple[int, np.ndarray, np.ndarray, bool]]) -> str:
        """The interval-mask scoring pass (``INTERVAL_KERNEL``) with this model's tables as constants."""
        n_trees = self.n_trees
        padded = -(-n_trees // 16) * 16  # trees, rounded up to whole vectors of masks
        lines = ["#include <math.h>", "#include <stdint.h>", "#include <string.h>", f"#define N_TREES {n_trees}",
                 f"#define NTP {padded}", f"#define WIDTH {width}", f"#define NF {len(tables)}",
                 "#define SUB 8", "#define OUTER 128", "#define TB 8",
                 f"static const int32_t FIRST_LEAF[NTP] = {{{', '.join(str(int(v)) for v in self.leaf_off)}}};"]
        classes = []
        for i, (f, cuts, masks, zero) in enumerate(tables):
            m = len(cuts)
            rows = np.full((len(masks), padded), 0xFFFF, dtype=np.uint16)
            rows[:, :n_trees] = masks
            lines.append(f"static const uint16_t M{f}[{len(rows)}][NTP] __attribute__((aligned(64))) = {{"
                         + ",".join("{" + ",".join(map(str, r.tolist())) + "}" for r in rows) + "};")
            classes += ["    {", "        double x[SUB];", "        uint32_t c[SUB];",
                        f"        for (int r = 0; r < SUB; r++) x[r] = r < nb ? cols[{f}][(i0 + r) * step] : 0.0;"]
            if m <= LINEAR_MAX:
                lines.append(f"static const double T{f}[{m}] = {{{', '.join(_c_float(v) for v in cuts.tolist())}}};")
                classes += ["        for (int r = 0; r < SUB; r++) c[r] = 0;",
                            f"        for (int j = 0; j < {m}; j++) for (int r = 0; r < SUB; r++) c[r] += x[r] > T{f}[j];"]
            else:
                block, blocks = _blocks(m)
                padded_cuts = np.full(blocks * block, np.inf)
                padded_cuts[:m] = cuts
                pivots = np.full(-(-(blocks - 1) // 4) * 4, np.inf)
                pivots[:blocks - 1] = padded_cuts[block - 1:(blocks - 1) * block:block]
                for name, values in ((f"P{f}", pivots), (f"Q{f}", padded_cuts)):
                    lines.append(f"static const double {name}[{len(values)}] __attribute__((aligned(32))) = "
                                 f"{{{', '.join(_c_float(v) for v in values.tolist())}}};")
                classes.append(f"        for (int r = 0; r < SUB; r++) c[r] = below_$SFX(P{f}, {len(pivots)}, Q{f}, {block}, x[r]);")
            classes.append(f"        for (int r = 0; r < SUB; r++) c[r] = isnan(x[r]) ? {m + 1} : c[r];")
            if zero:
                classes.append(f"        for (int r = 0; r < SUB; r++) c[r] = fabs(x[r]) <= {ZERO_THRESHOLD!r} ? {m + 2} : c[r];")
            classes += [f"        for (int r = 0; r < SUB; r++) mask[{i}][r] = M{f}[c[r]];", "    }"]
        kernel = INTERVAL_KERNEL.replace("$CLASSES", "\n".join(classes))
        for sfx, attr, vu, ul, vd, vi, dl, jb, true in INTERVAL_VARIANTS:
            if sfx != "base":
                lines.append("#if defined(__x86_64__) && defined(__GNUC__)")
            lines += [f"typedef uint16_t {vu} __attribute__((vector_size({2 * ul})));",
                      f"typedef double {vd} __attribute__((vector_size({8 * dl})));",
                      f"typedef int64_t {vi} __attribute__((vector_size({8 * dl})));",
                      f"#define TRUE_{sfx}(v) {true}"]
            text = kernel
            for token, value in (("$SFX", sfx), ("$ATTR", attr), ("$VU", vu), ("$UL", ul), ("$VD", vd), ("$VI", vi),
                                 ("$DL", dl), ("$JB", jb), ("$TRUE", f"TRUE_{sfx}")):
                text = text.replace(token, str(value))
            lines.append(text)
            if sfx != "base":
                lines.append("#endif")
        return "\n".join(lines) + INTERVAL_DISPATCH

    def _straight_source(self, width: int) -> str:
        """The trees as straight-line C (``leaves_of``) plus ``SCORE_DRIVER``."""
        nodes = self._nodes()
        # Each feature the trees read is loaded once per row (not once per split: ~8% less CPU).
        used = sorted({int(f) for f in self.feat})
        lines = ["#include <math.h>", "#include <stdint.h>", f"#define N_TREES {max(self.n_trees, 1)}",
                 f"#define WIDTH {width}", "static void leaves_of(const double* const* cols, int64_t at, int32_t* L) {",
                 *[f"const double x{f} = cols[{f}][at];" for f in used]]
        for t in range(self.n_trees):
            base, lbase = int(self.node_off[t]), int(self.leaf_off[t])
            if base < 0:
                lines.append(f"L[{t}] = {lbase};")
                continue
            stack: list[tuple[str, int]] = [("node", 0)]
            while stack:  # depth first, written as nested if/else
                what, node = stack.pop()
                if what == "text":
                    lines.append(("} else {", "}")[node])
                    continue
                if node < 0:
                    lines.append(f"L[{t}] = {lbase + ~node};")
                    continue
                k = base + node
                lines.append(f"if ({self._c_condition(nodes[k])}) {{")
                stack += [("text", 1), ("node", int(self.right[k])), ("text", 0), ("node", int(self.left[k]))]
        lines.append("}")
        return "\n".join(lines) + SCORE_DRIVER

    @staticmethod
    def _c_condition(node: np.void) -> str:
        """The C test that sends a row left: ``Tree::NumericalDecision`` with the node's constants folded in."""
        v, thr, kind = f"x{int(node['feat'])}", float(node["thr"]), int(node["kind"])
        t = _c_float(thr)
        missing, default_left = kind & 3, bool(kind & 4)
        if kind == 0:  # NaN reads as 0.0: left exactly when 0.0 <= threshold
            return f"!({v} > {t})" if 0.0 <= thr else f"({v} <= {t})"
        if missing == MISSING_NAN:  # NaN takes the default side
            return f"!({v} > {t})" if default_left else f"({v} <= {t})"
        # missing = zero: NaN reads as 0.0, and a value within 1e-35 of zero takes the default side
        return f"(isnan({v}) || fabs({v}) <= {ZERO_THRESHOLD!r} ? {int(default_left)} : {v} <= {t})"

    def _compiled(self, width: int = MAX_GROUPS) -> Any | None:
        """This model's scoring library; the straight-line trees when a compiler cannot build the
        interval masks (their vector extensions are GCC's and Clang's), None without a compiler."""
        source = self.c_source(width)
        lib = self._load(source)
        if lib is None and "leaves_of" not in source:  # built only when the masks' library cannot be
            lib = self._load(self._straight_source(width))
        return lib

    def _load(self, source: str) -> Any | None:
        # the key hashed once per source (a long text): each batch then only looks the library up
        if ("key", source) not in self._credit:
            self._credit["key", source] = "model-" + hashlib.sha256(source.encode()).hexdigest()[:16]
        return compiled(self._credit["key", source], "trees", source, [["-O3"]], restypes={"score": None})

    def score(
        self, X: np.ndarray | list[np.ndarray], *, credit: np.ndarray | None = None, threshold: float = 0.0,
        explain: str = "none", k: int = 3, min_credit: float = 0.0, threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(raw, top)``: raw scores and, for the rows ``explain`` names, the top ``k`` credit groups.

        ``X``: rows × features, or one array per feature (``model.feature_columns``: no matrix
        is built). ``explain``: ``"none"``, ``"fake"`` (rows with raw >= ``threshold``) or ``"all"``.
        ``top`` is rows × k group indices (int8), ranked by credit towards the row's side of
        ``threshold`` (stable: ties to the lower group), -1 where the credit is below
        ``min_credit`` or the row is not explained. One pass of this model's compiled C
        (``c_source``), split over ``threads`` (default: ``default_threads()``; ctypes releases the
        GIL); every row's numbers are the same however the rows are split. Without a compiler the
        generic walk and NumPy give the same numbers.
        """
        mode = {"none": 0, "fake": 1, "all": 2}[explain]
        columns = _columns(X, len(self.feature_names))
        n = len(columns[0]) if columns else 0
        groups = 0 if credit is None else credit.shape[1]
        if mode and credit is None:
            raise ValueError("explaining rows needs the credit table")
        k = min(k, groups) if mode else 0
        # Scores alone use the width of the last explaining pass (one compiled library per model).
        width = credit_width(groups) if credit is not None else self._credit.get("width", MAX_GROUPS)
        self._credit["width"] = width
        lib = self._compiled(width) if groups <= MAX_GROUPS and n else None
        if lib is None:
            matrix = np.column_stack(columns) if columns else np.zeros((0, len(self.feature_names)))
            return self._score_numpy(matrix, credit, threshold, mode, k, min_credit)
        raw = np.empty(n, dtype=np.float64)
        top = np.empty((n, k), dtype=np.int8) if mode else None
        padded = None
        if credit is not None:  # width columns per leaf, the rest zero; rows on 64-byte lines
            padded = _aligned_zeros(len(credit) * width).reshape(len(credit), width)
            padded[:, :groups] = credit
        pointers = (ctypes.c_void_p * len(columns))(*[c.ctypes.data for c in columns])

        def ptr(a: np.ndarray | None) -> Any:
            return None if a is None else ctypes.c_void_p(a.ctypes.data)

        def run(lo: int, hi: int) -> None:
            lib.score(
                pointers, ctypes.c_int64(lo), ctypes.c_int64(hi), ctypes.c_int64(columns[0].strides[0] // 8),
                ptr(self.leaf_value), ptr(raw), ptr(padded), ctypes.c_int32(groups),
                ctypes.c_double(threshold), ctypes.c_int32(mode), ctypes.c_int32(k), ctypes.c_double(min_credit), ptr(top),
            )

        parts = threads or default_threads()
        if parts <= 1 or n < 50_000:
            run(0, n)
        else:
            bounds = np.linspace(0, n, parts + 1).astype(int).tolist()
            with ThreadPoolExecutor(max_workers=parts) as pool:
                list(pool.map(run, bounds[:-1], bounds[1:]))
        return raw, top

    def _score_numpy(
        self, X: np.ndarray, credit: np.ndarray | None, threshold: float, mode: int, k: int, min_credit: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        raw, _, contrib = self.walk(X, credit=credit if mode else None)
        if not mode:
            return raw, None
        assert contrib is not None
        fake = raw >= threshold
        top = np.full((len(raw), k), -1, dtype=np.int8)
        rows = fake if mode == 1 else np.ones(len(raw), dtype=bool)
        top[rows] = rank_credit(contrib[rows], fake[rows], k, min_credit)
        return raw, top

    # -- path credits ------------------------------------------------------------------------------
    def path_credit(self, groups: np.ndarray | None = None) -> tuple[np.ndarray, float]:
        """``(total leaves × columns)`` credit of every leaf's path, and the bias.

        The credit of a step from a node to its child (``child value − node value``) goes to the
        feature the node splits on; ``groups`` (features × groups of 0/1) sums features into groups.
        A row's credits plus the bias equal its raw score (the steps telescope to the leaf value).
        """
        n_features = len(self.feature_names)
        table = np.zeros((len(self.leaf_value), n_features))
        bias = 0.0
        for t in range(self.n_trees):
            base, lbase = int(self.node_off[t]), int(self.leaf_off[t])
            if base < 0:
                bias += float(self.leaf_value[lbase])
                continue
            bias += float(self.internal_value[base])
            stack = [(0, np.zeros(n_features))]
            while stack:  # ~15 leaves per tree, once per model: not a hot path
                node, credit = stack.pop()
                k = base + node
                value, feature = self.internal_value[k], self.feat[k]
                for child in (self.left[k], self.right[k]):
                    step = credit.copy()
                    if child < 0:
                        step[feature] += self.leaf_value[lbase + ~child] - value
                        table[lbase + ~child] = step
                    else:
                        step[feature] += self.internal_value[base + child] - value
                        stack.append((int(child), step))
        return (table if groups is None else table @ groups), bias

    # -- scoring -----------------------------------------------------------------------------------
    def walk(
        self, X: np.ndarray, *, credit: np.ndarray | None = None, leaves: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``(raw, leaves or None, credits or None)`` for the rows of ``X`` (float64, rows × features)."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        n = X.shape[0]
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(f"X must have {len(self.feature_names)} columns, got shape {X.shape}")
        lib = _library()
        if lib is None:
            return self._walk_numpy(X, credit, leaves)
        raw = np.empty(n, dtype=np.float64)
        leaf_out = np.empty((n, self.n_trees), dtype=np.int32) if leaves else None
        groups = 0 if credit is None else credit.shape[1]
        credit_c = None if credit is None else np.ascontiguousarray(credit, dtype=np.float64)
        contrib = np.empty((n, groups), dtype=np.float64) if credit is not None else None

        def ptr(a: np.ndarray | None) -> Any:
            return None if a is None else a.ctypes.data_as(ctypes.c_void_p)

        lib.walk(
            ptr(X), ctypes.c_int64(n), ctypes.c_int32(X.shape[1]), ctypes.c_int32(self.n_trees),
            ptr(self.node_off), ptr(self.leaf_off), ptr(self._nodes()), ptr(self.leaf_value), ptr(credit_c),
            ctypes.c_int32(groups), ptr(raw), ptr(leaf_out), ptr(contrib),
        )
        return raw, leaf_out, contrib

    def _walk_numpy(
        self, X: np.ndarray, credit: np.ndarray | None, leaves: bool
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The same walk, vectorised over rows, a tree at a time and a level at a time."""
        n = X.shape[0]
        raw = np.zeros(n)
        leaf_out = np.empty((n, self.n_trees), dtype=np.int32) if leaves else None
        contrib = np.zeros((n, credit.shape[1])) if credit is not None else None
        rows = np.arange(n)
        for t in range(self.n_trees):
            base, lbase = int(self.node_off[t]), int(self.leaf_off[t])
            leaf = np.zeros(n, dtype=np.int64)
            if base >= 0:
                node = np.zeros(n, dtype=np.int64)
                active = rows
                while active.size:
                    k = base + node[active]
                    v = X[active, self.feat[k]]
                    mt = (self.dtype[k] >> 2) & 3
                    nan = np.isnan(v)
                    v = np.where(nan & (mt != MISSING_NAN), 0.0, v)
                    missing = ((mt == MISSING_ZERO) & (np.abs(v) <= ZERO_THRESHOLD)) | ((mt == MISSING_NAN) & nan)
                    go_left = np.where(missing, (self.dtype[k] & DEFAULT_LEFT) != 0, v <= self.thr[k])
                    nxt = np.where(go_left, self.left[k], self.right[k])
                    done = nxt < 0
                    leaf[active[done]] = ~nxt[done]
                    node[active[~done]] = nxt[~done]
                    active = active[~done]
            raw += self.leaf_value[lbase + leaf]
            if leaf_out is not None:
                leaf_out[:, t] = leaf
            if contrib is not None:
                contrib += credit[lbase + leaf]
        return raw, leaf_out, contrib

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds) of the rows of ``X``: this model's compiled trees (``score``)."""
        return self.score(X)[0]
