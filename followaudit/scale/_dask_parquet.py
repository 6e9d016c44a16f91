"""The Parquet engine the Dask engine writes labels with (imported only when Dask is installed).

Dask's own pyarrow engine stores pandas metadata naming each column's dtype; for the ``reasons``
column that is ``large_list<item: large_string>[pyarrow]``, which ``pandas.read_parquet`` cannot
parse back (pandas-dev/pandas#57411, apache/arrow#39914), so nobody could open the labels with
pandas. The labels have no index to restore, so this engine writes them without pandas metadata:
plain Parquet, the same as the local engine's. ``to_parquet(engine=...)`` accepts an engine class.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from dask.dataframe.io.parquet.arrow import ArrowDatasetEngine


class LabelsParquetEngine(ArrowDatasetEngine):
    @classmethod
    def _pandas_to_arrow_table(cls, df: Any, preserve_index: bool = False, schema: Any = None) -> pa.Table:
        table = super()._pandas_to_arrow_table(df, preserve_index=preserve_index, schema=schema)
        metadata = {k: v for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
        return table.replace_schema_metadata(metadata or None)
