"""Pandera schema for source users, and staging raw users into `staged_users` / `rejected_users`.

Validation is column-wise (vectorised pandas string ops), so 100k users take well under a second per
check. Invalid rows are set aside with their reasons; they block the tenant only when their share
exceeds the configured `max_reject_fraction`, as a sign the source itself is broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from xts_pipeline import queries, store

GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID_RE = rf"^{GUID}\Z"
# Entra: the alias (before @) is at most 64 characters and the whole UPN at most 113.
UPN_LENGTH, MAIL_LENGTH = (3, 113), (3, 254)
# Patterns end in \Z, not $: Python's $ also matches before a trailing newline, so "a@b.com\n" would pass.
UPN_RE = r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
MAIL_RE = r"^[^@\s\x00-\x1f\x7f\"(),:;<>\[\\\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z"
NO_CONTROL = r"[^\x00-\x1f\x7f]*"
NO_CONTROL_RE = rf"^{NO_CONTROL}\Z"
USER_TYPES = ["Member", "Guest"]

# Graph attribute -> (staged column, max length). Lengths follow Graph's documented limits.
TEXT_COLUMNS: dict[str, tuple[str, int]] = {
    "displayName": ("display_name", 256),
    "givenName": ("given_name", 64),
    "surname": ("surname", 64),
    "jobTitle": ("job_title", 128),
    "department": ("department", 64),
    "companyName": ("company_name", 64),
    "officeLocation": ("office_location", 128),
    "employeeId": ("employee_id", 16),
    "mailNickname": ("mail_nickname", 64),
}


def _text(max_len: int, nullable: bool = True) -> pa.Column:
    return pa.Column(
        str,
        checks=[pa.Check.str_length(1, max_len, error=f"length must be 1..{max_len}"),
                pa.Check.str_matches(NO_CONTROL_RE, error="contains a control character")],
        nullable=nullable,
    )


def user_schema() -> pa.DataFrameSchema:
    """The contract a source user must meet before it is staged."""
    cols: dict[str, pa.Column] = {
        "id": pa.Column(str, checks=pa.Check.str_matches(GUID_RE, error="not a GUID"), nullable=False, unique=True),
        "user_principal_name": pa.Column(
            str, checks=[pa.Check.str_length(*UPN_LENGTH, error="length must be {}..{}".format(*UPN_LENGTH)),
                         pa.Check.str_matches(UPN_RE, error="not a UPN (alias@domain, alias at most 64)")],
            nullable=False
        ),
        "mail": pa.Column(str, checks=[pa.Check.str_length(*MAIL_LENGTH, error="length must be {}..{}".format(*MAIL_LENGTH)),
                                       pa.Check.str_matches(MAIL_RE, error="not an e-mail address")],
                          nullable=True),
        "user_type": pa.Column(str, checks=pa.Check.isin(USER_TYPES, error="userType must be Member or Guest"),
                               nullable=False),
        "creation_type": pa.Column(
            str, nullable=True, checks=pa.Check.str_matches(NO_CONTROL_RE, error="contains a control character")
        ),
        "account_enabled": pa.Column("boolean", nullable=True),
    }
    for _, (col, max_len) in TEXT_COLUMNS.items():
        cols[col] = _text(max_len, nullable=(col != "display_name"))
    return pa.DataFrameSchema(cols, strict=False, coerce=False)


# The flattened columns and the Graph attribute each comes from, in frame order (account_enabled is cast).
_FLAT: tuple[tuple[str, str], ...] = (
    ("user_principal_name", "userPrincipalName"), ("mail", "mail"), ("user_type", "userType"),
    ("creation_type", "creationType"), ("account_enabled", "accountEnabled"),
    *((col, attr) for attr, (col, _) in TEXT_COLUMNS.items()),
)

# A pre-check DuckDB runs while it flattens the documents (sql/staging/precheck.sql says what it may and may
# not pass): pandera then validates only the rows it does not mark (the checks are per row; ids are the raw
# table's primary key). Its patterns and bounds are the schema's constants above, filled in by name.
def _precheck_sql() -> str:
    """The SQL expression of the sound pre-check over the flattened columns (sql/staging/precheck.sql)."""
    optional = [queries.render("staging/precheck_text", column=col, max_length=str(max_len), no_control=NO_CONTROL)
                for col, max_len in TEXT_COLUMNS.values() if col != "display_name"]
    return queries.render(
        "staging/precheck", guid=GUID, no_control=NO_CONTROL, upn_min=str(UPN_LENGTH[0]), upn_max=str(UPN_LENGTH[1]),
        mail_min=str(MAIL_LENGTH[0]), mail_max=str(MAIL_LENGTH[1]),
        display_name_max=str(TEXT_COLUMNS["displayName"][1]), optional_text=" AND ".join(optional))


_PRECHECK = _precheck_sql()
# raw_frame's flattened columns: `v[i] AS column`, from _FLAT (schema constants, never data).
_FLAT_COLUMNS = ", ".join(f"TRY_CAST(v[{i}] AS BOOLEAN) AS {col}" if col == "account_enabled" else f"v[{i}] AS {col}"
                          for i, (col, _) in enumerate(_FLAT, start=1))


def raw_frame(con, tenant: str, since: object | None = None, attrs: bool = True,
              precheck: bool = False) -> pd.DataFrame:
    """Flatten one tenant's raw Graph users into the columns the schema checks (done in DuckDB).

    `since`: only rows updated after this raw_users.updated_at (incremental staging). Each document is
    parsed once (one json_extract_string over every path), not once per column. `attrs`: also the whole
    document as text. `precheck`: also a `surely_valid` column (see _precheck_sql).
    """
    df = con.execute(
        queries.render("staging/raw_frame", columns=_FLAT_COLUMNS, attrs=", attrs" if attrs else "",
                       attrs_text=", CAST(data AS VARCHAR) AS attrs" if attrs else "",
                       surely_valid=f", {_PRECHECK} AS surely_valid" if precheck else ""),
        {"tenant": tenant, "since": since, "paths": [f'$."{attr}"' for _, attr in _FLAT]},
    ).df()
    df["account_enabled"] = df["account_enabled"].astype("boolean")
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df


def validate_users(df: pd.DataFrame, surely_valid: pd.Series | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `df` into (valid rows, rejected rows with a `reasons` column). Pure; never raises on bad data.

    `surely_valid` (a boolean mask, raw_frame's pre-check): rows it marks are accepted without pandera and the
    others validated alone, which gives the same split while the ids are unique; otherwise the whole frame.
    """
    if surely_valid is not None and df["id"].is_unique:
        rest = df[~surely_valid.to_numpy(dtype=bool)]
        reasons, whole_frame = _failures(rest)
        if not whole_frame:
            return _split(df, reasons, whole_frame)
    return _split(df, *_failures(df))


def _failures(df: pd.DataFrame) -> tuple[dict[int, list[str]], list[str]]:
    """The schema's failures in `df`: per row index, and those of the whole frame."""
    reasons: dict[int, list[str]] = {}
    whole_frame: list[str] = []
    if df.empty:
        return reasons, whole_frame
    try:
        user_schema().validate(df, lazy=True)
        return reasons, whole_frame
    except SchemaErrors as err:
        cases = err.failure_cases
    for row in cases.itertuples(index=False):
        text = f"{row.column}: {row.check}" + ("" if pd.isna(row.failure_case) else f" (got {str(row.failure_case)[:80]!r})")
        if row.index is None or pd.isna(row.index):
            whole_frame.append(text)
            continue
        reasons.setdefault(int(row.index), []).append(text)
    return reasons, whole_frame


def _split(df: pd.DataFrame, reasons: dict[int, list[str]], whole_frame: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if not reasons and not whole_frame:
        return df, df.iloc[0:0].assign(reasons=pd.Series(dtype=object))
    if whole_frame and not reasons:
        # A frame-level failure (e.g. a missing column) rejects everything: say why on every row.
        bad = df.assign(reasons="; ".join(whole_frame))
        return df.iloc[0:0], bad
    bad_idx = sorted(reasons)
    rejected = df.loc[bad_idx].copy()
    rejected["reasons"] = ["; ".join(sorted(set(reasons[i]))) for i in bad_idx]
    return df.drop(index=bad_idx), rejected


def _arrow(df: pd.DataFrame, cols: list[str]):
    """Columns of `df` as an Arrow table (strings as strings even when a column is all null)."""
    import pyarrow

    types = {"account_enabled": pyarrow.bool_()}
    return pyarrow.table({c: pyarrow.array(df[c].tolist(), type=types.get(c, pyarrow.string())) for c in cols})


@dataclass
class StageResult:
    """What staging one tenant did: counts, and the reasons of a sample of rejected rows."""

    tenant: str
    total: int
    staged: int
    rejected: int
    max_reject_fraction: float
    blocked: bool
    sample_rejects: list[dict] = field(default_factory=list)

    @property
    def reject_fraction(self) -> float:
        return self.rejected / self.total if self.total else 0.0


class StagingBlocked(RuntimeError):
    """Too many source users failed validation; the previous staged snapshot was kept."""


def stage_tenant(db: str | Path | None, tenant: str, max_reject_fraction: float = 0.05,
                 incremental: bool = True) -> StageResult:
    """Validate `raw_users` of `tenant` into `staged_users` / `rejected_users`.

    Incremental (the default once a tenant was staged): only raw rows updated since the last staging are
    validated; rows gone from raw_users leave both tables. When rejects exceed `max_reject_fraction` of
    the tenant, `staged_users` keeps the last good snapshot and `StagingBlocked` is raised (after
    recording the rejected rows so people can read them).
    """
    wm_name = f"stage:{tenant}"
    with store.connect(db) as con:
        wm = store.get_watermark(con, wm_name) if incremental else None
        since = wm[0] if wm else None
        high, total = con.execute(queries.load("staging/raw_extent"), {"tenant": tenant}).fetchone()
        df = raw_frame(con, tenant, since, attrs=False, precheck=True)
        kept_rejects = 0
        if since is not None:
            kept_rejects = con.execute(queries.load("staging/kept_rejects"),
                                       {"tenant": tenant, "ids": df["id"].tolist()}).fetchone()[0]
    valid, rejected = validate_users(df.drop(columns="surely_valid"), df["surely_valid"])
    result = StageResult(
        tenant=tenant, total=int(total), staged=0, rejected=int(kept_rejects) + len(rejected),
        max_reject_fraction=max_reject_fraction, blocked=False,
        sample_rejects=rejected[["id", "user_principal_name", "reasons"]].head(20).to_dict("records"),
    )
    result.blocked = result.reject_fraction > max_reject_fraction
    staged_cols = ["id", "user_principal_name", "mail", "display_name", "user_type", "creation_type",
                   "account_enabled"]
    with store.connect(db) as con:
        con.execute("BEGIN")
        changed = df["id"].tolist()
        if since is None:
            con.execute(queries.load("staging/clear_rejected"), {"tenant": tenant})
        else:
            con.execute(queries.load("staging/clear_rejected_ids"), {"tenant": tenant, "ids": changed})
        con.execute(queries.load("staging/drop_gone_rejected"), {"tenant": tenant})
        # The documents go from raw_users to the staged and rejected tables in SQL: only ids and the
        # validated columns travel through pandas.
        con.register("rej_df", _arrow(rejected, ["id", "user_principal_name", "reasons"]))
        con.execute(queries.load("staging/insert_rejected"), {"tenant": tenant})
        con.unregister("rej_df")
        if not result.blocked:
            if since is None:
                con.execute(queries.load("staging/clear_staged"), {"tenant": tenant})
            else:
                con.execute(queries.load("staging/clear_staged_ids"), {"tenant": tenant, "ids": changed})
                con.execute(queries.load("staging/drop_gone_staged"), {"tenant": tenant})
            con.register("ok_df", _arrow(valid, staged_cols))
            con.execute(queries.load("staging/insert_staged"), {"tenant": tenant})
            con.unregister("ok_df")
            if high is not None:
                store.set_watermark(con, wm_name, high, "full" if since is None else "incremental")
        result.staged = store.count(con, "staged_users", "tenant", tenant)
        con.execute("COMMIT")
    if result.blocked:
        raise StagingBlocked(
            f"tenant {tenant}: {result.rejected} of {result.total} source users "
            f"({result.reject_fraction:.1%}) failed validation, above staging.max_reject_fraction "
            f"{max_reject_fraction:.1%}; the previous staged snapshot was kept. Read rejected_users for the "
            f"reasons and fix the source data, or raise staging.max_reject_fraction in the config."
        )
    return result
