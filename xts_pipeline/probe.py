"""The change probe: before a cycle starts any run, read from Graph what changed since the store's last
extraction and snapshot, and say which pairs provably have nothing to do.

A tenant run is how a cycle sees change, and it costs a Dagster run even when nothing changed. The probe
reads the same changes without writing the store:

- a source: a users delta round from its stored link (the link is not advanced, so the next source run
  reads the same changes), its assigned groups' members and its verified domains. A changed user counts
  unless it is an external (B2B) user before and after: those are never a pair's source users (scoping
  drops them; xts_pipeline.external), and they are what our own writes into a tenant that is also a source
  bring back. A member converted to external counts (a leaver); so does any other change.
- a target: a users delta round from the link its snapshot took just before it read the users
  (`$deltatoken=latest`), its groups, role holders and partner policies read again. They make a private
  copy of the target's snapshot (temporary tables of one connection), and each pair into it is
  fingerprinted over that copy exactly as after a target run (xts_pipeline.unchanged): our own writes are
  the expected echo there, anything else changes the fingerprint.

A pair is skipped when its source shows no change, its fingerprint over the copy equals its last clean
run's and nothing is pending; its tenants' runs are then not needed either. When in doubt (no link yet, an
expired link, a staging that did not finish, a read that failed) the pair runs, with both tenant runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from xts_pipeline import extract, queries, store, unchanged
from xts_pipeline.external import is_external
from xts_pipeline.graph.errors import DeltaTokenExpiredError

# At most this many tenants are read from Graph at once (each read is mostly waiting on Graph).
PROBE_THREADS = 4
_PAGE = {"Prefer": "odata.maxpagesize=999"}  # as a delta round asks (graph/reader.py)


@dataclass(frozen=True)
class SideVerdict:
    """What the probe saw of one side of one tenant: changed (its run is needed) or not, and why."""

    side: str  # "source" or "target"
    tenant: str
    changed: bool
    reason: str
    items: int = 0  # delta items read
    ignored: int = 0  # of which our own echo or external users


@dataclass
class Result:
    """The probe's answer: per pair a decision (skip or not), per tenant side what it saw."""

    decisions: dict[str, unchanged.Decision] = field(default_factory=dict)
    sides: dict[tuple[str, str], SideVerdict] = field(default_factory=dict)

    def skipped(self) -> list[unchanged.Decision]:
        return [d for d in self.decisions.values() if d.skip]


@dataclass
class _Read:
    """Graph's answers for one tenant side, read in a thread (no store access)."""

    items: list[dict] = field(default_factory=list)
    resynced: bool = False
    groups: list[list[str]] = field(default_factory=list)
    domains: dict[str, bool] = field(default_factory=dict)
    directory: extract.TargetDirectory | None = None
    error: str = ""


def _delta_items(client: Any, link: str) -> tuple[list[dict], bool]:
    """The items of one delta round from `link` (its $select is in the link), or ([], True) when Graph says the
    link expired: then a run's full read is due, which the probe does not do itself."""
    items: list[dict] = []
    url = extract.rebase_link(link, client.conn.graph_url)
    if url is None:  # the link can't be sent to this endpoint: the run's full read is due
        return [], True
    try:
        for body in client.iter_pages(url, None, _PAGE):
            items.extend(body.get("value", []))
    except DeltaTokenExpiredError:
        return [], True
    return items, False


def _read_source(client: Any, tenant: str, link: str, refs: set[str]) -> _Read:
    out = _Read()
    try:
        out.items, out.resynced = _delta_items(client, link)
        if not out.resynced:
            out.groups = extract.read_source_groups(tenant, client, refs)[1]
            out.domains = extract.verified_domains_found(client)
    except Exception as exc:  # noqa: BLE001 - a read that fails means "run", never "unchanged"
        out.error = _one_line(exc)
    return out


def _read_target(client: Any, tenant: str, link: str, partners: list[tuple[str, str]]) -> _Read:
    out = _Read()
    try:
        out.items, out.resynced = _delta_items(client, link)
        if not out.resynced:
            out.directory = extract.read_target_directory(tenant, client, partners)
            out.domains = extract.verified_domains_found(client)
    except Exception as exc:  # noqa: BLE001 - as above
        out.error = _one_line(exc)
    return out


def _one_line(exc: BaseException) -> str:
    """The error's class and first line: what a verdict's reason shows (GraphError's first line names the
    tenant and endpoint, never a secret)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _folded(items: list[dict]) -> tuple[dict[str, dict], set[str]]:
    """The round's items in order: per user the merged patch, and the users whose last item removes them."""
    upserts, removed = extract.fold_page(items)
    return upserts, {u for u, gone in removed.items() if gone}


def _judge_source(con: duckdb.DuckDBPyConnection, tenant: str, read: _Read) -> SideVerdict:
    """Changed unless every delta item is an external user before and after, and groups and domains match."""
    def verdict(changed: bool, reason: str, ignored: int = 0) -> SideVerdict:
        return SideVerdict("source", tenant, changed, reason, len(read.items), ignored)

    if read.error:
        return verdict(True, f"the probe's read failed ({read.error})")
    if read.resynced:
        return verdict(True, "the delta link expired: a full read is due")
    upserts, removed = _folded(read.items)
    ids = sorted(set(upserts) | removed)
    old = {i: orjson.loads(d) for i, d in con.execute(queries.load("probe/raw_docs"), [tenant, ids]).fetchall()}
    for uid in ids:
        before = old.get(uid)
        after = None if uid in removed else {**(before or {}), **upserts[uid]}
        if not ((before is None or is_external(before)) and (after is None or is_external(after))):
            return verdict(True, f"user {uid} changed")
    stored = sorted(list(r) for r in con.execute(queries.load("probe/source_groups"), [tenant]).fetchall())
    if stored != sorted(read.groups):
        return verdict(True, "an assigned group's members changed", len(ids))
    domains = dict(con.execute(queries.load("probe/domains"), [tenant]).fetchall())
    if domains != read.domains:
        return verdict(True, "the verified domains changed", len(ids))
    why = f"{len(ids)} changed user(s), all external before and after" if ids else "no change"
    return verdict(False, why, len(ids))


def _stage_target(con: duckdb.DuckDBPyConnection, tenant: str, read: _Read, names: dict[str, str],
                  started: Any) -> SideVerdict | None:
    """The target's snapshot as a target run would take it now, in the shadow tables; a verdict if it can't be."""
    def verdict(reason: str) -> SideVerdict:
        return SideVerdict("target", tenant, True, reason, len(read.items))

    if read.error:
        return verdict(f"the probe's read failed ({read.error})")
    if read.resynced or read.directory is None:
        return verdict("the delta link expired: a full snapshot is due")
    domains = dict(con.execute(queries.load("probe/domains"), [tenant]).fetchall())
    if domains and domains != read.domains:  # stored by its source runs when it is a source too
        return verdict("the verified domains changed")
    upserts, removed = _folded(read.items)
    if removed:
        # A removed user's reports: the next users list ($expand=manager) shows them without a manager, but the
        # delta does not name them (the report's own object did not change). Without this the copy kept the
        # gone manager, a report our pair manages still looked like its echo and the pair was skipped, while
        # the real snapshot saw the manager gone and ran it (e.g. after our own write deleted a leaver).
        for (uid,) in con.execute(queries.load("probe/reports_of"), [tenant, sorted(removed)]).fetchall():
            if uid not in removed and "manager" not in upserts.get(uid, {}):
                upserts.setdefault(uid, {})["manager"] = None
    ids = sorted(set(upserts) | removed)
    old = {i: orjson.loads(d) for i, d in con.execute(queries.load("probe/target_docs"), [tenant, ids]).fetchall()}
    # A user the snapshot does not hold that no pair created since is a restore (or an admin's): users it
    # managed before it was deleted show it as their manager again on the next users list, and the delta does
    # not name them, so the copy can't be built from the delta (a pair's restore of a manager was skipped
    # otherwise). Read before the snapshot watermark is moved to the probe's start below.
    new = sorted(u for u in upserts if u not in old)
    if new:
        ours = {r[0] for r in con.execute(queries.load("probe/created_by_us"), {"ids": new, "tenant": tenant}).fetchall()}
        back = [u for u in new if u not in ours]
        if back:
            return verdict(f"user {back[0]} came back: the users it managed may show it again")
    extract.keep_target_users(con, tenant, ids)
    rows = []
    for uid in ids:
        if uid in removed:
            continue
        doc = {**old.get(uid, {}), **upserts[uid]}
        if doc.get("manager") is None:
            doc.pop("manager", None)  # as the users list with $expand=manager shows a user without one
        rows.append(doc)
    if rows:
        extract.load_target_page(con, tenant, rows, names)
    extract.publish_target(con, tenant, names, read.directory)
    # Graph as of the probe's start: writes finished after it are the next snapshot's to check
    # (unchanged/fingerprint's `written`).
    store.set_watermark(con, f"snapshot:{tenant}", started, "change probe")
    return None


def worth_probing(db: str | Path, pair_keys: list[str]) -> bool:
    """Whether any of the pairs has a clean run recorded (the probe can skip nothing otherwise): a first cycle
    then starts its worker processes at once, as before the probe existed."""
    if not Path(db).exists():
        return False
    with store.connect(db) as con:
        return bool(con.execute(queries.load("unchanged/recorded"), [list(pair_keys)]).fetchall())


def probe(db: str | Path | None, topology: Any, pair_keys: list[str], client: Callable[[str], Any]) -> Result:
    """Which of `pair_keys` can be skipped without any run (module docstring); `client(tenant)` gives Graph.

    No store connection is held while Graph is read (other processes may write meanwhile): what the probe
    starts from is read first, then Graph, then the store again, and a side whose link or staging moved in
    between counts as changed.
    """
    pairs = [topology.pair(k) for k in pair_keys]
    result = Result()
    with store.connect(db) as con:
        started = con.execute(queries.load("probe/now")).fetchone()[0]
        recorded = {r[0]: r[1:] for r in con.execute(queries.load("unchanged/recorded"), [list(pair_keys)]).fetchall()}
        candidates = []
        for p in pairs:
            why = "no clean run recorded since the last change" if p.key not in recorded else unchanged.pending(con, p.key)
            if why:
                result.decisions[p.key] = _run(p.key, why, recorded.get(p.key))
            else:
                candidates.append(p)
        state = _side_state(con, candidates)
    links = {k: v[0] for k, v in state.items() if isinstance(v, tuple)}
    result.sides.update({k: v for k, v in state.items() if isinstance(v, SideVerdict)})
    reads = _read_all(topology, candidates, links, client) if links else {}
    with store.connect(db) as con:
        now = _side_state(con, candidates)
        for key, read in reads.items():
            if now.get(key) != state[key]:
                result.sides[key] = SideVerdict(key[0], key[1], True, "a run moved its store while the probe read")
            elif key[0] == "source":
                result.sides[key] = _judge_source(con, key[1], read)
        probed = sorted(t for (side, t) in reads if side == "target" and ("target", t) not in result.sides)
        if probed:
            for statement in queries.statements("probe/shadow_target"):
                con.execute(statement, {"tenants": probed} if "$tenants" in statement else None)
            for t in probed:
                read = reads[("target", t)]
                result.sides[("target", t)] = (_stage_target(con, t, read, state[("target", t)][1], started)
                                              or SideVerdict("target", t, False, "no change but our own writes",
                                                             len(read.items)))
        _decide(con, topology, candidates, recorded, result)
    return result


def _side_state(con: duckdb.DuckDBPyConnection, pairs: list[Any]) -> dict[tuple[str, str], Any]:
    """Per tenant side of `pairs`: (its delta link, what else the probe starts from), or why it can't be probed."""
    out: dict[tuple[str, str], Any] = {}
    for t in sorted({p.source for p in pairs}):
        link, staged, strays, stage_mark = con.execute(queries.load("probe/source_state"), {"tenant": t}).fetchone()
        if not link:
            out[("source", t)] = SideVerdict("source", t, True, "no delta link stored yet")
        elif not staged or strays:
            out[("source", t)] = SideVerdict("source", t, True, "its last staging did not finish")
        else:
            out[("source", t)] = (link, None, stage_mark)
    for t in sorted({p.target for p in pairs}):
        link, ext, taken = con.execute(queries.load("probe/target_state"), [t, t, t]).fetchone()
        if not link:
            out[("target", t)] = SideVerdict("target", t, True, "no snapshot delta link stored yet")
        else:
            out[("target", t)] = (link, orjson.loads(ext or "{}"), taken)
    return out


def _read_all(topology: Any, pairs: list[Any], links: dict[tuple[str, str], str],
              client: Callable[[str], Any]) -> dict[tuple[str, str], _Read]:
    """Every side's Graph reads, a few tenants at a time (a tenant's two sides one after another)."""
    def one(side: str, t: str) -> _Read:
        if side == "source":
            refs = {g for p in pairs if p.source == t for g in (getattr(p.scope, "groups", None) or [])}
            return _read_source(client(t), t, links[(side, t)], refs)
        partners = sorted({(p.source, topology.tenant(p.source).tenant_id) for p in topology.pairs()
                           if p.enabled and p.target == t})
        return _read_target(client(t), t, links[(side, t)], partners)

    keys = sorted(links)
    with ThreadPoolExecutor(max_workers=max(1, min(PROBE_THREADS, len(keys)))) as pool:
        return dict(zip(keys, pool.map(lambda k: one(*k), keys), strict=True))


def _run(key: str, reason: str, rec: Iterable[str] | None = None) -> unchanged.Decision:
    _, run_id, cycle = rec if rec else ("", "", "")
    return unchanged.Decision(key, False, reason, recorded_run=run_id, recorded_cycle=cycle)


def _decide(con: duckdb.DuckDBPyConnection, topology: Any, pairs: list[Any], recorded: dict[str, tuple],
            result: Result) -> None:
    """Fingerprint each pair whose sides show nothing that needs a run, over the private snapshot copies."""
    ready = []
    for p in pairs:
        src, dst = result.sides.get(("source", p.source)), result.sides.get(("target", p.target))
        seen = [v for v in (src, dst) if v is not None and v.changed]
        if seen:
            result.decisions[p.key] = _run(p.key, f"{seen[0].side} {seen[0].tenant}: {seen[0].reason}",
                                           recorded[p.key])
        else:
            ready.append(p)
    if not ready:
        return
    unchanged.prepare(con, topology, [p.key for p in ready])
    for p in ready:
        old, run_id, cycle = recorded[p.key]
        fp = unchanged.fingerprint(con, topology, p.key, prepared=True)
        same = fp == old
        result.decisions[p.key] = unchanged.Decision(
            p.key, same, f"the probe saw no change since run {run_id}" if same else "the probe saw inputs change",
            fingerprint=fp, recorded_run=run_id, recorded_cycle=cycle)
