"""Materialization metadata common to every asset: row count, counts, markdown preview, column schema.

Everything here is presentation for the Dagster UI: previews are capped (rows and cell width), say how
many rows they show of how many, render JSON change lists as `attribute: old → new`, and never show
Python's `None`/`nan`; counts are small markdown tables rather than JSON blobs.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import dagster as dg

from xts_pipeline import queries, store

MAX_CELL_CHARS = 300
"""A preview cell longer than this is cut (with the number of hidden attributes when it is a list)."""

EMPTY = ""
"""How a NULL shows in a preview cell."""

_EXTENSION = re.compile(r"^extension_[0-9a-f]{32}_")


def _short_property(name: str) -> str:
    """`extension_<app id>_xtsSourceObjectId` -> `extension_…_xtsSourceObjectId` (the app id is noise here)."""
    return _EXTENSION.sub("extension_…_", str(name))


def _scalar(v: Any) -> str:
    if v is None:
        return "∅"
    if isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False)


def _changes_text(changes: list[dict], create: bool = False) -> str:
    """`[{property, old, new}, ...]` as `attr: old → new; ...` (∅ = empty); a create's as `attr = new; ...`."""
    parts = []
    # the link extensions (source tenant / object id, pair) go last: the attributes people read come first
    for c in sorted(changes, key=lambda c: str(c.get("property", "")).startswith("extension_")):
        prop = _short_property(c.get("property", "?"))
        old, new = c.get("old"), c.get("new")
        parts.append(f"{prop} = {_scalar(new)}" if create else f"{prop}: {_scalar(old)} → {_scalar(new)}")
    return _join_capped(parts)


def _object_text(obj: dict) -> str:
    """A JSON object as `key = value; ...` without its null members."""
    return _join_capped([f"{_short_property(k)} = {_scalar(v)}" for k, v in obj.items() if v is not None])


def _join_capped(parts: list[str]) -> str:
    out: list[str] = []
    size = 0
    for i, p in enumerate(parts):
        if out and size + len(p) + 2 > MAX_CELL_CHARS - 16:  # room for the "; … (+N more)" tail
            return "; ".join(out) + f"; … (+{len(parts) - i} more)"
        out.append(p)
        size += len(p) + 2
    return "; ".join(out)


def _cell(v: Any, create: bool = False) -> str:
    """One preview cell: NULL -> empty, JSON change lists / objects readable, capped, safe inside a md table."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return EMPTY
    try:
        import pandas as pd

        if v is pd.NaT or (not isinstance(v, (list, dict, str)) and pd.isna(v)):
            return EMPTY
    except (TypeError, ValueError, ImportError):
        pass
    text = v if isinstance(v, str) else str(v)
    if isinstance(v, (list, dict)) or (text[:1] in "[{" and text[-1:] in "]}"):
        try:
            parsed = v if isinstance(v, (list, dict)) else json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list) and parsed and all(isinstance(c, dict) and "property" in c for c in parsed):
            text = _changes_text(parsed, create)
        elif isinstance(parsed, dict):
            text = _object_text(parsed) or "{}"
        elif isinstance(parsed, list) and not parsed:
            text = EMPTY
    if len(text) > MAX_CELL_CHARS:
        text = text[:MAX_CELL_CHARS - 1] + "…"
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def preview_md(df: Any, total: int, order: str) -> str:
    """A markdown table of `df` (the first rows of `total`), with a line saying how many rows it shows."""
    if not len(df):
        return "_no rows_"
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    action = cols.index("action") if "action" in cols else None
    for row in df.itertuples(index=False, name=None):
        create = action is not None and str(row[action]).lower() == "create"
        lines.append("| " + " | ".join(_cell(v, create) or " " for v in row) + " |")
    shown = len(df)
    note = (f"_first {shown} of {total} rows, ordered by {order}_" if total > shown
            else f"_all {total} row{'s' if total != 1 else ''}_")
    return note + "\n\n" + "\n".join(lines)


def column_schema(con: Any, table: str) -> dg.TableSchema:
    """`dagster/column_schema` of a store table: its columns as the file has them, described by schema.sql."""
    docs = store.descriptions(table)
    return dg.TableSchema(columns=[dg.TableColumn(name=c, type=t, description=docs.get(c))
                                   for c, t in store.column_schema(con, table)])


def table_metadata(con: Any, table: str, params: dict[str, Any], *, order: str = "1",
                   count_by: tuple[str, ...] = (), limit: int = 20, order_label: str | None = None) -> dict[str, Any]:
    """Metadata for the rows an asset materialised in `table`: those of its query `assets/sql/preview/<table>.sql`.

    The query is package data with `$name` parameters; `order` and `count_by` are the query's own columns.
    """
    store.columns(table)  # the whitelist: a store table, and so a query file of ours
    rows = con.sql(queries.load(f"preview/{table}", "assets"), params=params)
    n = int(rows.count("*").fetchall()[0][0])
    md: dict[str, Any] = {
        "dagster/row_count": dg.MetadataValue.int(n),
        "dagster/column_schema": column_schema(con, table),
        "preview": dg.MetadataValue.md(preview_md(rows.order(order).limit(int(limit)).df(), n, order_label or order)),
    }
    for col in count_by:
        if col not in rows.columns:
            raise ValueError(f"count_by {col!r}: not a column of assets/sql/preview/{table}.sql")
        counts = rows.count("*", groups=col, projected_columns=col).order("1").fetchall()
        md[f"count_by_{col}"] = counts_md({str(k): int(v) for k, v in counts}, key=col)
    return md


PLAN_ACTIONS = frozenset({"create", "update", "disable", "delete", "restore", "skip"})


def counts_md(counts: dict[str, int], key: str | None = None) -> dg.MetadataValue:
    """A small markdown table of counts (reads better in the UI than JSON).

    Keys like `create/Skipped` (operation/outcome, as applied_changes tallies them) get a column each.
    """
    if not counts:
        return dg.MetadataValue.md("_none_")
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    if all(str(k).count("/") == 1 for k in counts):
        rows = "\n".join(f"| {esc(a)} | {esc(b)} | {v} |" for a, b, v in
                         ((*str(k).split("/"), v) for k, v in counts.items()))
        return dg.MetadataValue.md("| operation | outcome | count |\n|---|---|---:|\n" + rows)
    if key is None:
        key = "action" if set(map(str, counts)) <= PLAN_ACTIONS else " "
    rows = "\n".join(f"| {esc(k)} | {v} |" for k, v in counts.items())
    return dg.MetadataValue.md(f"| {esc(key)} | count |\n|---|---:|\n" + rows)


PAGE_ROWS = 250
MAX_PAGES = 40  # 10,000 rows in the UI; `xts sync --dry-run` and the plan table hold the rest


def plan_pages(con: Any, pair_key: str, holds: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """The whole plan (every writing row) as pages of markdown, held users first, marked with guardrail and reason.

    `holds`: change_id -> (guardrail, reason), the per-user verdicts the guardrail checks record for the
    same plan. Page keys sort in the UI ("plan page 01 of 12", ...).
    """
    import pandas as pd

    df = con.execute(queries.load("plan_pages", "assets"), {"pair_key": pair_key}).df()
    if df.empty:
        return {"plan page 1 of 1": dg.MetadataValue.md("_no writes planned_")}
    df.insert(0, "held", [f"HELD by {holds[c][0]}: {holds[c][1]}" if c in holds else "" for c in df["change_id"]])
    df = pd.concat([df[df["held"] != ""], df[df["held"] == ""]]).drop(columns=["change_id"])
    pages = max(1, -(-len(df) // PAGE_ROWS))
    width = len(str(min(pages, MAX_PAGES)))
    out: dict[str, Any] = {}
    for i in range(min(pages, MAX_PAGES)):
        part = df.iloc[i * PAGE_ROWS:(i + 1) * PAGE_ROWS]
        label = f"rows {i * PAGE_ROWS + 1}-{i * PAGE_ROWS + len(part)} of {len(df)} (held users first)"
        out[f"plan page {i + 1:0{width}d} of {pages}"] = dg.MetadataValue.md(preview_md(part, len(part), label)
                                                                             .replace("_all ", f"_{label}: ", 1))
    if pages > MAX_PAGES:
        out["plan pages not shown"] = (f"{pages - MAX_PAGES} more page(s): `xts sync --dry-run` prints the counts; "
                                       "the plan table in DuckDB has every row")
    return out
