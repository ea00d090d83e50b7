"""Materialization metadata common to every asset: row count, counts, markdown preview, column schema."""

from __future__ import annotations

from typing import Any

import dagster as dg

from xts_pipeline import store


def table_metadata(con: Any, table: str, where: str, params: list, *, preview_cols: str = "*",
                   order: str = "1", count_by: tuple[str, ...] = (), limit: int = 20) -> dict[str, Any]:
    """Metadata for the rows of `table` matching `where` (identifiers come from code, values via params)."""
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", params).fetchone()[0]  # noqa: S608
    df = con.execute(
        f"SELECT {preview_cols} FROM {table} WHERE {where} ORDER BY {order} LIMIT {int(limit)}", params  # noqa: S608
    ).df()
    md: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(int(n)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=c, type=t) for c, t in store.column_schema(con, table)]
        ),
        "preview": dg.MetadataValue.md(df.astype(str).to_markdown(index=False) if len(df) else "_no rows_"),
    }
    for col in count_by:
        md[f"count_by_{col}"] = dg.MetadataValue.json(store.count_by(con, table, col, where, params))
    return md


def counts_md(counts: dict[str, int]) -> dg.MetadataValue:
    """A small markdown table of counts (reads better in the UI than JSON)."""
    rows = "\n".join(f"| {k} | {v} |" for k, v in counts.items())
    return dg.MetadataValue.md("| what | count |\n|---|---|\n" + rows if counts else "_none_")
