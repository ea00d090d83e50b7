"""Persistent sandbox state in one sqlite3 file (WAL), with a per-tenant change sequence for delta.

Users are stored as pre-serialised JSON blobs (full + Graph's default projection) so listing is cheap.
Every create/update/delete/restore/purge bumps the tenant's `seq` and stamps it on the row; a delta
token is just "changes with seq > N". States: 0 active, 1 soft-deleted, 2 purged (tombstone).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

ACTIVE, DELETED, PURGED = 0, 1, 2
RETENTION_S = 30 * 24 * 3600

# Graph's default $select for users (v1.0).
DEFAULT_USER_PROPS = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)

# String collections of the user (v1.0 CSDL: Collection(Edm.String), Nullable="false").
COLLECTION_PROPS = ("businessPhones", "otherMails", "proxyAddresses", "imAddresses", "identities")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
  tenant_id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, domain TEXT NOT NULL,
  client_id TEXT NOT NULL, client_secret TEXT NOT NULL, app_object_id TEXT NOT NULL,
  permissions TEXT NOT NULL, allow_invitations INTEGER NOT NULL DEFAULT 1, seq INTEGER NOT NULL DEFAULT 0,
  min_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS users (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, upn TEXT NOT NULL, mail TEXT,
  seq INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0, deleted_at REAL,
  manager_id TEXT, data BLOB NOT NULL, dflt BLOB NOT NULL,
  PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_active ON users(tenant_id, id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS users_upn ON users(tenant_id, upn);
CREATE INDEX IF NOT EXISTS users_mail ON users(tenant_id, mail);
CREATE INDEX IF NOT EXISTS users_seq ON users(tenant_id, seq);
CREATE INDEX IF NOT EXISTS users_deleted ON users(tenant_id, deleted_at) WHERE state = 1;
CREATE TABLE IF NOT EXISTS groups_ (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
  tenant_id TEXT NOT NULL, group_id TEXT NOT NULL, member_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, group_id, member_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS extensions (
  tenant_id TEXT NOT NULL, name TEXT NOT NULL, app_object_id TEXT NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (tenant_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS directory_roles (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, template_id TEXT NOT NULL, data BLOB NOT NULL,
  PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS role_members (
  tenant_id TEXT NOT NULL, role_id TEXT NOT NULL, member_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, role_id, member_id)
) WITHOUT ROWID;
-- One row per change event, in seq order: what users/delta reports. Graph's delta "can contain a single
-- entity multiple times" and sends "at least the updated properties" (api/user-delta.md), so each event
-- keeps only the properties it changed, with their values at that time ("@manager": a manager change).
CREATE TABLE IF NOT EXISTS changes (
  tenant_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, state INTEGER NOT NULL, patch BLOB NOT NULL,
  PRIMARY KEY (tenant_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_principals (
  tenant_id TEXT NOT NULL, id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partners (
  tenant_id TEXT NOT NULL, partner_id TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (tenant_id, partner_id)
) WITHOUT ROWID;
"""


@dataclass
class Tenant:
    tenant_id: str
    name: str
    domain: str
    client_id: str
    client_secret: str = field(repr=False)
    app_object_id: str
    permissions: list[str]
    allow_invitations: bool = True
    seq: int = 0
    min_seq: int = 0
    user_count: int = 0


def dumps(obj) -> bytes:
    return orjson.dumps(obj)


def default_projection(user: dict) -> bytes:
    out = {k: user.get(k) for k in DEFAULT_USER_PROPS}
    if out.get("businessPhones") is None:
        out["businessPhones"] = []  # a collection: an array, never null
    return orjson.dumps(out)


def derive(user: dict) -> dict:
    """Properties the directory derives on every write: the primary SMTP proxy address from mail
    (resources/user.md: mail changes "also update the user's proxyAddresses collection")."""
    mail = user.get("mail")
    proxies = [p for p in (user.get("proxyAddresses") or []) if not p.startswith("SMTP:")]
    user["proxyAddresses"] = ([f"SMTP:{mail}"] if mail else []) + proxies
    return user


def _lower(v) -> str | None:
    return v.lower() if isinstance(v, str) else None


class SandboxStore:
    """All sandbox state. Single-threaded use (the server's event loop); writes commit immediately."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / "sandbox.sqlite3"
        if not self.path.exists():  # it holds client secrets: private from the start (WAL/SHM copy the mode)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")
        had_log = self.db.execute("SELECT 1 FROM sqlite_master WHERE name='changes'").fetchone() is not None
        self.db.executescript(SCHEMA)
        if not had_log:  # a state dir from before the change log: older delta tokens must resync
            self.db.execute("UPDATE tenants SET min_seq = seq")
        self.tenants: dict[str, Tenant] = {}
        self.reload_tenants()
        self._data_version = self.db.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            self.db.close()

    # ---- meta -------------------------------------------------------------------------------
    def meta_get(self, key: str):
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def meta_set(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, orjson.dumps(value).decode()))

    # ---- tenants ----------------------------------------------------------------------------
    def reload_tenants(self) -> None:
        self.tenants = {}
        for row in self.db.execute(
            "SELECT tenant_id, name, domain, client_id, client_secret, app_object_id, permissions, "
            "allow_invitations, seq, min_seq FROM tenants ORDER BY rowid"
        ):
            t = Tenant(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]), bool(row[7]),
                       row[8], row[9])
            t.user_count = self.db.execute(
                "SELECT count(*) FROM users WHERE tenant_id=? AND state=0", (t.tenant_id,)).fetchone()[0]
            self.tenants[t.tenant_id] = t

    def reload_if_changed(self) -> bool:
        """Pick up tenants another process (`xts sandbox seed`) committed meanwhile; True if reloaded."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if version == getattr(self, "_data_version", version):
            self._data_version = version
            return False
        self._data_version = version
        known = set(self.tenants)
        self.reload_tenants()
        return set(self.tenants) != known

    def is_empty(self) -> bool:
        return not self.tenants

    def find_tenant(self, key: str) -> Tenant | None:
        """By tenant id, primary domain or name (case-insensitive)."""
        k = (key or "").lower()
        for t in self.tenants.values():
            if k in (t.tenant_id.lower(), t.domain.lower(), t.name.lower()):
                return t
        return None

    def add_tenant(self, seed) -> Tenant:
        """Insert a seed.TenantSeed (users via executemany, one transaction)."""
        if self.find_tenant(seed.tenant_id) or self.find_tenant(seed.name):
            raise ValueError(f"tenant {seed.name!r} ({seed.tenant_id}) already exists in {self.path}; "
                             "use another --tenant name or a fresh --state directory")
        db = self.db
        db.execute("BEGIN")
        try:
            db.execute(
                "INSERT INTO tenants(tenant_id, name, domain, client_id, client_secret, app_object_id, "
                "permissions, allow_invitations) VALUES (?,?,?,?,?,?,?,1)",
                (seed.tenant_id, seed.name, seed.domain, seed.client_id, seed.client_secret, seed.app_object_id,
                 orjson.dumps(list(seed.permissions)).decode()),
            )
            counter = [0]

            def rows():
                for u in seed.users:
                    u = dict(u)
                    manager = u.pop("_managerId", None)
                    for coll in COLLECTION_PROPS:  # the schema's collections are arrays, never null
                        if u.get(coll) is None:
                            u[coll] = []
                    derive(u)
                    counter[0] += 1
                    yield (seed.tenant_id, u["id"], _lower(u.get("userPrincipalName")) or "", _lower(u.get("mail")),
                           counter[0], manager, orjson.dumps(u), default_projection(u))

            db.executemany(
                "INSERT INTO users(tenant_id, id, upn, mail, seq, state, manager_id, data, dflt) "
                "VALUES (?,?,?,?,?,0,?,?,?)", rows())
            db.executemany("INSERT INTO groups_(tenant_id, id, data) VALUES (?,?,?)",
                           ((seed.tenant_id, g["id"], orjson.dumps(g)) for g in seed.groups))
            db.executemany("INSERT OR IGNORE INTO members(tenant_id, group_id, member_id) VALUES (?,?,?)",
                           ((seed.tenant_id, g, m) for g, m in seed.members))
            db.executemany("INSERT INTO directory_roles(tenant_id, id, template_id, data) VALUES (?,?,?,?)",
                           ((seed.tenant_id, r["id"], r["roleTemplateId"], orjson.dumps(r))
                            for r in getattr(seed, "directory_roles", ())))
            db.executemany("INSERT OR IGNORE INTO role_members(tenant_id, role_id, member_id) VALUES (?,?,?)",
                           ((seed.tenant_id, r, m) for r, m in getattr(seed, "role_members", ())))
            db.execute("UPDATE tenants SET seq=? WHERE tenant_id=?", (counter[0], seed.tenant_id))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.reload_tenants()
        return self.tenants[seed.tenant_id]

    def add_partner_policy(self, tenant_id: str, partner_id: str, data: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO partners(tenant_id, partner_id, data) VALUES (?,?,?)",
                        (tenant_id, partner_id, orjson.dumps(data)))

    def set_permissions(self, tenant: Tenant, permissions: list[str]) -> None:
        tenant.permissions = list(permissions)
        self.db.execute("UPDATE tenants SET permissions=? WHERE tenant_id=?",
                        (orjson.dumps(tenant.permissions).decode(), tenant.tenant_id))

    def set_client_secret(self, tenant: Tenant, secret: str) -> None:
        """Replace the app's only client secret (admin route): the old one stops working at once."""
        tenant.client_secret = secret
        self.db.execute("UPDATE tenants SET client_secret=? WHERE tenant_id=?", (secret, tenant.tenant_id))

    def set_allow_invitations(self, tenant: Tenant, allowed: bool) -> None:
        tenant.allow_invitations = bool(allowed)
        self.db.execute("UPDATE tenants SET allow_invitations=? WHERE tenant_id=?", (int(allowed), tenant.tenant_id))

    def _next_seq(self, tenant: Tenant) -> int:
        tenant.seq += 1
        self.db.execute("UPDATE tenants SET seq=? WHERE tenant_id=?", (tenant.seq, tenant.tenant_id))
        return tenant.seq

    # ---- users ------------------------------------------------------------------------------
    def get_user_row(self, tenant: Tenant, key: str, states=(ACTIVE,)):
        """(id, state, data dict, manager_id) by object id or UPN, or None."""
        marks = ",".join("?" * len(states))
        row = self.db.execute(
            f"SELECT id, state, data, manager_id FROM users WHERE tenant_id=? AND id=? AND state IN ({marks})",  # noqa: S608
            (tenant.tenant_id, key, *states)).fetchone()
        if row is None:
            row = self.db.execute(
                f"SELECT id, state, data, manager_id FROM users WHERE tenant_id=? AND upn=? AND state IN ({marks})",  # noqa: S608
                (tenant.tenant_id, key.lower(), *states)).fetchone()
        if row is None:
            return None
        return row[0], row[1], orjson.loads(row[2]), row[3]

    def get_user(self, tenant: Tenant, key: str) -> dict | None:
        row = self.get_user_row(tenant, key)
        return row[2] if row else None

    def upn_taken(self, tenant: Tenant, upn: str, except_id: str | None = None) -> bool:
        row = self.db.execute("SELECT id FROM users WHERE tenant_id=? AND upn=? AND state=0 AND id IS NOT ?",
                              (tenant.tenant_id, upn.lower(), except_id)).fetchone()
        return row is not None

    def find_active_by_mail(self, tenant: Tenant, mail: str) -> dict | None:
        row = self.db.execute("SELECT data FROM users WHERE tenant_id=? AND mail=? AND state=0 LIMIT 1",
                              (tenant.tenant_id, mail.lower())).fetchone()
        return orjson.loads(row[0]) if row else None

    def page_users(self, tenant: Tenant, after_id: str, limit: int, with_full: bool = True):
        """Active users ordered by id after `after_id`: list of (id, blob)."""
        col = "data" if with_full else "dflt"
        return self.db.execute(
            f"SELECT id, {col} FROM users WHERE tenant_id=? AND state=0 AND id>? ORDER BY id LIMIT ?",  # noqa: S608
            (tenant.tenant_id, after_id, limit)).fetchall()

    def page_users_containing(self, tenant: Tenant, after_id: str, limit: int, needle: str):
        """Like page_users, but only rows whose JSON contains `needle` (ASCII, case-insensitive): a cheap
        pre-filter for `prop eq 'value'` on properties without an index (e.g. extension lookups)."""
        return self.db.execute(
            "SELECT id, data FROM users WHERE tenant_id=? AND state=0 AND id>? AND instr(lower(CAST(data AS TEXT)), ?) "
            "ORDER BY id LIMIT ?", (tenant.tenant_id, after_id, needle.lower(), limit)).fetchall()

    def users_by_column(self, tenant: Tenant, column: str, value: str):
        """Fast path for `eq` lookups on id / userPrincipalName / mail."""
        assert column in ("id", "upn", "mail")
        v = value if column == "id" else value.lower()
        return self.db.execute(
            f"SELECT id, data FROM users WHERE tenant_id=? AND state=0 AND {column}=? ORDER BY id",  # noqa: S608
            (tenant.tenant_id, v)).fetchall()

    def _log(self, tenant: Tenant, seq: int, user_id: str, state: int, patch: dict) -> None:
        self.db.execute("INSERT INTO changes(tenant_id, seq, id, state, patch) VALUES (?,?,?,?,?)",
                        (tenant.tenant_id, seq, user_id, state, orjson.dumps(patch)))

    def _write_user(self, tenant: Tenant, user: dict, state: int, deleted_at: float | None,
                    manager_id: str | None, insert: bool, patch: dict | None = None) -> int:
        seq = self._next_seq(tenant)
        derive(user)
        if patch is not None and "mail" in patch:
            patch = {**patch, "proxyAddresses": user["proxyAddresses"]}
        self._log(tenant, seq, user["id"], state, user if patch is None else patch)
        args = (_lower(user.get("userPrincipalName")) or "", _lower(user.get("mail")), seq, state, deleted_at,
                manager_id, orjson.dumps(user), default_projection(user))
        if insert:
            self.db.execute("INSERT INTO users(upn, mail, seq, state, deleted_at, manager_id, data, dflt, tenant_id, id)"
                            " VALUES (?,?,?,?,?,?,?,?,?,?)", (*args, tenant.tenant_id, user["id"]))
        else:
            self.db.execute("UPDATE users SET upn=?, mail=?, seq=?, state=?, deleted_at=?, manager_id=?, data=?, "
                            "dflt=? WHERE tenant_id=? AND id=?", (*args, tenant.tenant_id, user["id"]))
        return seq

    def create_user(self, tenant: Tenant, user: dict) -> dict:
        user = dict(user)
        user.setdefault("id", str(uuid.uuid4()))
        self.db.execute("BEGIN")
        try:
            self._write_user(tenant, user, ACTIVE, None, None, insert=True)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        tenant.user_count += 1
        return user

    def update_user(self, tenant: Tenant, user_id: str, patch: dict) -> dict | None:
        row = self.get_user_row(tenant, user_id)
        if row is None:
            return None
        uid, _state, data, manager = row
        data.update(patch)
        self.db.execute("BEGIN")
        self._write_user(tenant, data, ACTIVE, None, manager, insert=False, patch=dict(patch))
        self.db.execute("COMMIT")
        return data

    def set_manager(self, tenant: Tenant, user_id: str, manager_id: str | None) -> None:
        old = self.db.execute("SELECT manager_id FROM users WHERE tenant_id=? AND id=?",
                              (tenant.tenant_id, user_id)).fetchone()
        self.db.execute("BEGIN")
        seq = self._next_seq(tenant)
        self.db.execute("UPDATE users SET manager_id=?, seq=? WHERE tenant_id=? AND id=?",
                        (manager_id, seq, tenant.tenant_id, user_id))
        self._log(tenant, seq, user_id, ACTIVE, {"@manager": manager_id, "@old_manager": old[0] if old else None})
        self.db.execute("COMMIT")

    def managers_for(self, tenant: Tenant, user_ids: list[str]) -> dict[str, str | None]:
        """Manager id of each user, in one query: $expand=manager for a whole page."""
        if not user_ids:
            return {}
        marks = ",".join("?" * len(user_ids))
        return dict(self.db.execute(
            f"SELECT id, manager_id FROM users WHERE tenant_id=? AND id IN ({marks})",  # noqa: S608
            (tenant.tenant_id, *user_ids)).fetchall())

    def manager_of(self, tenant: Tenant, user_id: str) -> dict | None:
        row = self.db.execute(
            "SELECT m.data FROM users u JOIN users m ON m.tenant_id=u.tenant_id AND m.id=u.manager_id "
            "WHERE u.tenant_id=? AND u.id=? AND m.state=0", (tenant.tenant_id, user_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def soft_delete(self, tenant: Tenant, user_id: str, now_iso: str, now: float) -> bool:
        row = self.get_user_row(tenant, user_id)
        if row is None:
            return False
        uid, _s, data, manager = row
        data["deletedDateTime"] = now_iso
        self.db.execute("BEGIN")
        self._write_user(tenant, data, DELETED, now, manager, insert=False, patch={})
        self.db.execute("DELETE FROM members WHERE tenant_id=? AND member_id=?", (tenant.tenant_id, uid))
        self.db.execute("COMMIT")
        tenant.user_count -= 1
        return True

    def restore(self, tenant: Tenant, object_id: str) -> dict | None:
        row = self.get_user_row(tenant, object_id, states=(DELETED,))
        if row is None:
            return None
        uid, _s, data, manager = row
        data.pop("deletedDateTime", None)
        self.db.execute("BEGIN")
        self._write_user(tenant, data, ACTIVE, None, manager, insert=False)
        self.db.execute("COMMIT")
        tenant.user_count += 1
        return data

    def purge_expired(self, tenant: Tenant, now: float) -> int:
        """Deleted users older than 30 sandbox days become tombstones (delta reports them as deleted)."""
        ids = [r[0] for r in self.db.execute(
            "SELECT id FROM users WHERE tenant_id=? AND state=1 AND deleted_at<=?",
            (tenant.tenant_id, now - RETENTION_S))]
        if ids:
            self.db.execute("BEGIN")
            for uid in ids:
                self._tombstone(tenant, uid)
            self.db.execute("COMMIT")
        return len(ids)

    def purge_one(self, tenant: Tenant, user_id: str) -> None:
        """Permanently delete a soft-deleted user (DELETE /directory/deletedItems/{id})."""
        self.db.execute("BEGIN")
        self._tombstone(tenant, user_id)
        self.db.execute("COMMIT")

    def _tombstone(self, tenant: Tenant, user_id: str) -> None:
        """A soft-deleted user becomes a purged tombstone (delta reports it as deleted); inside a transaction."""
        seq = self._next_seq(tenant)
        cur = self.db.execute("UPDATE users SET state=2, seq=?, data=?, dflt=? WHERE tenant_id=? AND id=? AND state=1",
                              (seq, orjson.dumps({"id": user_id}), b"{}", tenant.tenant_id, user_id))
        if cur.rowcount:
            self._log(tenant, seq, user_id, PURGED, {})

    def deleted_users(self, tenant: Tenant, after_id: str, limit: int):
        return self.db.execute(
            "SELECT id, data FROM users WHERE tenant_id=? AND state=1 AND id>? ORDER BY id LIMIT ?",
            (tenant.tenant_id, after_id, limit)).fetchall()

    def changes_since(self, tenant: Tenant, seq: int, limit: int):
        """(seq, id, state, patch blob) of each change event after `seq`, in seq order (one user may recur)."""
        return self.db.execute(
            "SELECT seq, id, state, patch FROM changes WHERE tenant_id=? AND seq>? ORDER BY seq LIMIT ?",
            (tenant.tenant_id, seq, limit)).fetchall()

    def manager_data(self, tenant: Tenant, user_ids: list[str]) -> dict[str, dict]:
        """Each user's manager as a stored user dict (active managers only): plain $expand=manager."""
        if not user_ids:
            return {}
        marks = ",".join("?" * len(user_ids))
        rows = self.db.execute(
            f"SELECT u.id, m.data FROM users u JOIN users m ON m.tenant_id=u.tenant_id AND m.id=u.manager_id "  # noqa: S608
            f"WHERE u.tenant_id=? AND u.id IN ({marks}) AND m.state=0", (tenant.tenant_id, *user_ids)).fetchall()
        return {uid: orjson.loads(blob) for uid, blob in rows}

    # ---- extensions -------------------------------------------------------------------------
    def register_extension(self, tenant: Tenant, app_object_id: str, name: str, body: dict) -> dict:
        ext = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant.tenant_id}/{name}")), "deletedDateTime": None,
               "appDisplayName": "xts sandbox app", "dataType": body.get("dataType", "String"),
               "isMultiValued": bool(body.get("isMultiValued", False)), "isSyncedFromOnPremises": False,
               "name": name, "targetObjects": body.get("targetObjects") or ["User"]}
        self.db.execute("INSERT OR REPLACE INTO extensions(tenant_id, name, app_object_id, data) VALUES (?,?,?,?)",
                        (tenant.tenant_id, name, app_object_id, orjson.dumps(ext)))
        return ext

    def extensions(self, tenant: Tenant, app_object_id: str | None = None) -> list[dict]:
        if app_object_id is None:
            rows = self.db.execute("SELECT data FROM extensions WHERE tenant_id=?", (tenant.tenant_id,))
        else:
            rows = self.db.execute("SELECT data FROM extensions WHERE tenant_id=? AND app_object_id=?",
                                   (tenant.tenant_id, app_object_id))
        return [orjson.loads(r[0]) for r in rows]

    def extension_names(self, tenant: Tenant) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT name FROM extensions WHERE tenant_id=?", (tenant.tenant_id,))}

    # ---- groups -----------------------------------------------------------------------------
    def page_groups(self, tenant: Tenant, after_id: str, limit: int):
        return self.db.execute("SELECT id, data FROM groups_ WHERE tenant_id=? AND id>? ORDER BY id LIMIT ?",
                               (tenant.tenant_id, after_id, limit)).fetchall()

    def get_group(self, tenant: Tenant, group_id: str) -> dict | None:
        row = self.db.execute("SELECT data FROM groups_ WHERE tenant_id=? AND id=?",
                              (tenant.tenant_id, group_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def page_members(self, tenant: Tenant, group_id: str, after_id: str, limit: int):
        return self.db.execute(
            "SELECT u.id, u.data FROM members m JOIN users u ON u.tenant_id=m.tenant_id AND u.id=m.member_id "
            "WHERE m.tenant_id=? AND m.group_id=? AND u.state=0 AND u.id>? ORDER BY u.id LIMIT ?",
            (tenant.tenant_id, group_id, after_id, limit)).fetchall()

    def put_group(self, tenant: Tenant, group_id: str, data: dict) -> dict:
        """Create or replace a group as given (admin only: the sandbox has no Graph write route for groups)."""
        data = {**data, "id": group_id}
        self.db.execute("INSERT OR REPLACE INTO groups_(tenant_id, id, data) VALUES (?,?,?)",
                        (tenant.tenant_id, group_id, orjson.dumps(data)))
        return data

    def set_group_members(self, tenant: Tenant, group_id: str, member_ids: list[str]) -> None:
        """Replace a group's direct members (admin only, as put_group)."""
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM members WHERE tenant_id=? AND group_id=?", (tenant.tenant_id, group_id))
        self.db.executemany("INSERT OR IGNORE INTO members(tenant_id, group_id, member_id) VALUES (?,?,?)",
                            ((tenant.tenant_id, group_id, m) for m in member_ids))
        self.db.execute("COMMIT")

    # ---- directory roles (activated roles and their user members) ----------------------------
    def page_directory_roles(self, tenant: Tenant, after_id: str, limit: int):
        return self.db.execute("SELECT id, data FROM directory_roles WHERE tenant_id=? AND id>? ORDER BY id LIMIT ?",
                               (tenant.tenant_id, after_id, limit)).fetchall()

    def get_directory_role(self, tenant: Tenant, key: str) -> dict | None:
        """By object id, or by `roleTemplateId=<id>` as Graph also accepts."""
        low = key.lower()
        if low.startswith("roletemplateid="):
            query = "SELECT data FROM directory_roles WHERE tenant_id=? AND lower(template_id)=?"
            low = low.split("=", 1)[1].strip("'")
        else:
            query = "SELECT data FROM directory_roles WHERE tenant_id=? AND lower(id)=?"
        row = self.db.execute(query, (tenant.tenant_id, low)).fetchone()
        return orjson.loads(row[0]) if row else None

    def roles_of(self, tenant: Tenant, user_id: str) -> list[str]:
        """Display names of the directory roles a user holds (for Graph's administrator-only rules)."""
        return [orjson.loads(r[0]).get("displayName") or "" for r in self.db.execute(
            "SELECT d.data FROM role_members m JOIN directory_roles d ON d.tenant_id=m.tenant_id AND d.id=m.role_id "
            "WHERE m.tenant_id=? AND m.member_id=?", (tenant.tenant_id, user_id))]

    def page_role_members(self, tenant: Tenant, role_id: str, after_id: str, limit: int):
        """(id, kind, blob) of a role's members: users, groups and service principals, by id."""
        return self.db.execute(
            "SELECT id, kind, data FROM ("
            " SELECT u.id, 'user' AS kind, u.data FROM role_members m JOIN users u"
            "  ON u.tenant_id=m.tenant_id AND u.id=m.member_id WHERE m.tenant_id=?1 AND m.role_id=?2 AND u.state=0"
            " UNION ALL SELECT g.id, 'group', g.data FROM role_members m JOIN groups_ g"
            "  ON g.tenant_id=m.tenant_id AND g.id=m.member_id WHERE m.tenant_id=?1 AND m.role_id=?2"
            " UNION ALL SELECT p.id, 'servicePrincipal', p.data FROM role_members m JOIN service_principals p"
            "  ON p.tenant_id=m.tenant_id AND p.id=m.member_id WHERE m.tenant_id=?1 AND m.role_id=?2"
            ") WHERE id>?3 ORDER BY id LIMIT ?4", (tenant.tenant_id, role_id, after_id, limit)).fetchall()

    def add_role_member(self, tenant: Tenant, role_id: str, kind: str, member_id: str | None,
                        display_name: str | None) -> dict:
        """Assign a role to a user, a (new or existing) group, or a new service principal."""
        mid = member_id or str(uuid.uuid4())
        data = {"id": mid, "displayName": display_name or f"{kind} {mid[:8]}"}
        if kind == "group" and self.get_group(tenant, mid) is None:
            data.update({"mailEnabled": False, "securityEnabled": True, "isAssignableToRole": True,
                         "groupTypes": [], "description": None, "mail": None, "mailNickname": mid[:8]})
            self.db.execute("INSERT INTO groups_(tenant_id, id, data) VALUES (?,?,?)",
                            (tenant.tenant_id, mid, orjson.dumps(data)))
        elif kind == "servicePrincipal":
            data.update({"appId": str(uuid.uuid4()), "servicePrincipalType": "Application",
                         "accountEnabled": True})
            self.db.execute("INSERT OR REPLACE INTO service_principals(tenant_id, id, data) VALUES (?,?,?)",
                            (tenant.tenant_id, mid, orjson.dumps(data)))
        self.db.execute("INSERT OR IGNORE INTO role_members(tenant_id, role_id, member_id) VALUES (?,?,?)",
                        (tenant.tenant_id, role_id, mid))
        return {"@odata.type": f"#microsoft.graph.{kind}", **data}

    # ---- cross-tenant access ----------------------------------------------------------------
    def get_partner(self, tenant: Tenant, partner_id: str) -> dict | None:
        row = self.db.execute("SELECT data FROM partners WHERE tenant_id=? AND partner_id=?",
                              (tenant.tenant_id, partner_id.lower())).fetchone()
        return orjson.loads(row[0]) if row else None

    def put_partner(self, tenant: Tenant, partner_id: str, data: dict) -> None:
        self.add_partner_policy(tenant.tenant_id, partner_id.lower(), data)

    def list_partners(self, tenant: Tenant) -> list[dict]:
        return [orjson.loads(r[0]) for r in self.db.execute(
            "SELECT data FROM partners WHERE tenant_id=? ORDER BY partner_id", (tenant.tenant_id,))]

    # ---- admin ------------------------------------------------------------------------------
    def counts(self) -> dict:
        out = {}
        for t in self.tenants.values():
            by_state = dict(self.db.execute(
                "SELECT state, count(*) FROM users WHERE tenant_id=? GROUP BY state", (t.tenant_id,)).fetchall())
            out[t.name] = {
                "tenant_id": t.tenant_id, "users": by_state.get(ACTIVE, 0), "deleted": by_state.get(DELETED, 0),
                "purged": by_state.get(PURGED, 0),
                "groups": self.db.execute("SELECT count(*) FROM groups_ WHERE tenant_id=?", (t.tenant_id,)).fetchone()[0],
                "directory_roles": self.db.execute("SELECT count(*) FROM directory_roles WHERE tenant_id=?",
                                                   (t.tenant_id,)).fetchone()[0],
                "extensions": sorted(self.extension_names(t)), "seq": t.seq,
                "permissions": t.permissions, "allow_invitations": t.allow_invitations,
            }
        return out

    def raw_users(self, tenant: Tenant, include_deleted: bool = False) -> list[dict]:
        q = "SELECT data, state, manager_id FROM users WHERE tenant_id=? AND state IN (0, ?)"
        out = []
        for data, state, manager in self.db.execute(q + " ORDER BY id", (tenant.tenant_id, 1 if include_deleted else 0)):
            d = orjson.loads(data)
            d["_state"] = ("active", "deleted", "purged")[state]
            d["_managerId"] = manager
            out.append(d)
        return out

