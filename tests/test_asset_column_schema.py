"""The assets that materialise store tables describe every column (`dagster/column_schema`) with the
descriptions of xts_pipeline/sql/schema.sql, and their previews come from `assets/sql/preview/<table>.sql`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assets.metadata import table_metadata
from xts_pipeline import queries, store

ROOT = Path(__file__).resolve().parents[1]
PREVIEWS = sorted(p.stem for p in (ROOT / "assets" / "sql" / "preview").glob("*.sql"))


def _materialised_tables() -> set[str]:
    """The tables the assets pass to their metadata helper."""
    text = (ROOT / "assets" / "sync.py").read_text(encoding="utf-8")
    return set(re.findall(r"_table_md\(\s*context,\s*\"(\w+)\"", text))


def test_each_materialised_table_has_its_preview_query():
    assert _materialised_tables() == set(PREVIEWS)


@pytest.mark.parametrize("table", PREVIEWS)
def test_every_column_of_the_asset_table_is_described(tmp_path, table):
    params = dict.fromkeys(re.findall(r"\$(\w+)", queries.load(f"preview/{table}", "assets")), "x")
    with store.connect(tmp_path / "x.duckdb") as con:
        md = table_metadata(con, table, params)
        in_file = [c for c, _ in store.column_schema(con, table)]
    schema = md["dagster/column_schema"]
    assert [c.name for c in schema.columns] == in_file
    undescribed = [c.name for c in schema.columns if not c.description]
    assert not undescribed, f"{table}: describe these columns in xts_pipeline/sql/schema.sql"
    assert md["dagster/row_count"].value == 0


def test_preview_counts_orders_and_caps_the_partition_rows(tmp_path):
    with store.connect(tmp_path / "x.duckdb") as con:
        con.executemany("INSERT INTO staged_users (tenant, id, user_principal_name, user_type) VALUES (?, ?, ?, ?)",
                        [["a", f"u{i:02d}", f"u{i}@a", "Guest" if i % 3 == 0 else "Member"] for i in range(30)]
                        + [["b", "zz", "zz@b", "Member"]])
        md = table_metadata(con, "staged_users", {"tenant": "a"}, order="id DESC", count_by=("user_type",), limit=5)
        with pytest.raises(ValueError, match="not a column"):
            table_metadata(con, "staged_users", {"tenant": "a"}, count_by=("tenant",))
        with pytest.raises(ValueError, match="not a table"):
            table_metadata(con, "staged_users; DROP TABLE plan", {"tenant": "a"})
    assert md["dagster/row_count"].value == 30
    preview = md["preview"].value
    assert preview.startswith("_first 5 of 30 rows, ordered by id DESC_")
    assert preview.index("| u29 |") < preview.index("| u25 |") and "| u24 |" not in preview
    assert "| Guest | 10 |" in md["count_by_user_type"].value and "| Member | 20 |" in md["count_by_user_type"].value
