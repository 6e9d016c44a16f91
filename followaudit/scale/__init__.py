"""Scoring at scale: one batch scorer, a streaming single-machine engine and a Dask engine.

``score_batch`` is the only scoring function (it calls ``classify.label_followers``); the local
engine (``score_local``) and the Dask engine (``score_dask``, needs ``pip install 'followaudit[dask]'``)
both run it over canonical Parquet and write labels plus a summary of shares with intervals.
"""

from .dask_engine import score_dask  # Dask itself is imported only when the engine runs
from .score import ScoreResult, input_files, score_batch, score_local, summary_path

__all__ = ["ScoreResult", "input_files", "score_batch", "score_dask", "score_local", "summary_path"]

