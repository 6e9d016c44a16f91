"""The shipped LightGBM trees, scored without LightGBM: raw scores, leaves and path credits in one pass.

An audit needs three things from the trees for every follower: the raw score (log-odds), and the
path credits that become its reasons (``reasons.py``). LightGBM gives them in two passes
(``predict`` and ``pred_leaf``), and importing it (with scikit-learn and SciPy) costs about two
seconds on every run. This module reads the model *text* (the same file LightGBM writes) into flat
node arrays and walks them in one small C loop, compiled once per machine with the system's C
compiler (``gcc -O3 -fopenmp``) and cached beside the other compiled artefacts; the loop is the same
for every model, so retraining never recompiles it. Without a compiler the same walk runs level by
level in NumPy (slower, identical results).

The walk follows LightGBM's ``Tree::NumericalDecision`` exactly: NaN becomes 0 unless the node's
missing type is NaN; a missing value (NaN, or zero for missing type "zero") goes to the node's default
side; otherwise ``value <= threshold`` goes left. Leaf values are summed in tree order in float64, so
raw scores equal LightGBM's bit for bit (checked on a probe each time a model is loaded, and by the
tests).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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

def cache_dir() -> Path:
    """``$FOLLOWAUDIT_CACHE`` or ``~/.cache/followaudit``: where the compiled walk is kept."""
    base = os.environ.get("FOLLOWAUDIT_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "followaudit"


def compile_enabled() -> bool:
    """``FOLLOWAUDIT_COMPILE=0`` keeps the NumPy walk (same numbers, slower)."""
    return os.environ.get("FOLLOWAUDIT_COMPILE", "1") not in ("0", "false", "no")


_LIB_LOCK = threading.Lock()
_LIB: dict[str, Any] = {}


def _library() -> Any | None:
    """The compiled walk (built once per machine and cached); None when no C compiler works."""
    with _LIB_LOCK:
        if "lib" in _LIB:
            return _LIB["lib"]
        lib = None
        if compile_enabled():
            digest = hashlib.sha256(C_SOURCE.encode()).hexdigest()[:16]
            target = cache_dir() / "compiled" / f"treewalk-{digest}.so"
            try:
                if not target.exists():
                    _build(target)
                lib = ctypes.CDLL(str(target))
                lib.walk.restype = None
            except (OSError, RuntimeError, subprocess.SubprocessError):
                lib = None  # no compiler: the NumPy walk gives the same numbers
        _LIB["lib"] = lib
        return lib


def _build(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source = target.with_suffix(f".{os.getpid()}.c")
    tmp = target.with_suffix(f".{os.getpid()}.tmp.so")
    source.write_text(C_SOURCE)
    try:
        for flags in (["-fopenmp"], []):  # OpenMP when the compiler has it
            done = subprocess.run(
                [os.environ.get("CC", "gcc"), "-O3", "-shared", "-fPIC", *flags, str(source), "-o", str(tmp), "-lm"],
                capture_output=True, text=True, timeout=120, check=False,
            )
            if done.returncode == 0:
                os.replace(tmp, target)
                return
        raise RuntimeError(done.stderr.strip()[-300:])
    finally:
        source.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


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
        return self.walk(X)[0]
