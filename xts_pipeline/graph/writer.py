"""$batch writer: pacing, retries, idempotent creates and exactly one Outcome per WriteOp.

Why creates take two batches and not one with dependsOn: Graph's JSON batching has no way for a
request to use a value from another response (no `$1`/Content-ID references), and the PATCH of an
invited user needs the `invitedUser.id` that only POST /invitations returns. Graph also rejects a
batch mixing dependent and independent requests ("Batch should be either fully sequential or fully
parallel"), which would forbid packing 10 creates into one batch. So a create is one logical op in
two steps: the invitation goes out in one batch, and its PATCH is queued for the next batch as soon
as the id is known (a 404 on that PATCH is Entra replication lag and is retried). Ops for the same
user run in order, never in the same batch, so no batch ever needs dependsOn; a 424 (failed
dependency) is still handled as a retry.

Idempotency: a create whose invitation may have been applied without us seeing the answer (reset,
timeout, 5xx) is never re-sent blind. The next step is a lookup GET with `lookup_filter` (and the
invited address): one match is adopted, none means the invitation is sent again. A PATCH or manager
reference whose answer was lost is read back the same way (GET of the properties it sets): when the
values are there it is done, so a lost answer costs one read and never a second write.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import requests

from .client import GraphClient, build_url, segment
from .concurrency import AdaptiveController
from .errors import (
    AuthError,
    GraphError,
    PermissionError_,
    TlsError,
    endpoint_of,
    parse_error_body,
    permission_hint,
)
from .odata import eq, fits_literal, needs_advanced
from .retry import backoff_delay, parse_retry_after

__all__ = ["WriteOp", "Outcome", "BatchWriter", "WriterStats", "INVITE_REDIRECT_URL", "MAX_BATCH"]

log = logging.getLogger("xts_pipeline.graph.writer")

Kind = Literal["create", "update", "delete", "restore", "manager"]
Status = Literal["success", "failed", "skipped"]
INVITE_REDIRECT_URL = "https://myapps.microsoft.com"
MAX_BATCH = 20  # Graph's documented $batch limit
WRITE_ONLY = frozenset({"passwordProfile"})  # user properties a GET never returns (api/resources/user.md)
# How much older than the invitation's answer a returned user must be to count as pre-existing (server clock;
# generous against clock rounding and a sandbox clock that runs faster than the wall).
EXISTING_USER_SLACK_S = 600.0

# Application permissions each write accepts (the API reference's least-privileged one, then higher ones).
_WRITE_PERMISSIONS: list[tuple[str, str, frozenset[str]]] = [
    ("POST", "/invitations", frozenset({"User.Invite.All", "User.ReadWrite.All", "Directory.ReadWrite.All"})),
    ("POST", "/restore", frozenset({"User.ReadWrite.All"})),
    ("GET", "/users", frozenset({"User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
                                 "Directory.ReadWrite.All"})),
    ("", "/users", frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All", "User.ManageIdentities.All",
                              "User.EnableDisableAccount.All"})),
]


def write_permissions(method: str, url: str) -> frozenset[str]:
    """The application permissions any one of which lets the app make this call."""
    path = endpoint_of(url).lower()
    for m, marker, perms in _WRITE_PERMISSIONS:
        if (not m or m == method.upper()) and marker in path:
            return perms
    return frozenset()


def _has_values(have: Any, want: Any) -> bool:
    """Whether a read user carries what a PATCH set: objects by the keys set (a PATCH of a complex property
    such as onPremisesExtensionAttributes names only the keys it changes), anything else by equality."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_has_values(have.get(k), v) for k, v in want.items())
    return have == want


def _parse_time(text: object) -> float | None:
    """ISO 8601 (createdDateTime) or an HTTP Date header, as epoch seconds."""
    if not isinstance(text, str) or not text:
        return None
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class WriteOp:
    """One intended change. `manager_id` (addition): the manager for kind="manager"; None removes it."""

    op_id: str
    kind: Kind
    user_id: str | None = None
    invitation: dict[str, Any] | None = None
    patch: dict[str, Any] | None = None
    lookup_filter: str | None = None
    manager_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The one recorded result of a WriteOp. `adopted`: a create found its user instead of inviting."""

    op_id: str
    status: Status
    target_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    attempts: int = 0
    duration_ms: int = 0
    kind: str | None = None
    adopted: bool = False
    http_status: int | None = None
    # The write was refused for who we are (token or app permission), not for this user: quarantine counts
    # these as credential failures; any other 400/403 is this user's own failure.
    credential_failure: bool = False


@dataclass
class WriterStats:
    batches: int = 0
    subrequests: int = 0
    writes_accepted: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    lookups: int = 0
    readbacks: int = 0  # PATCH / manager writes whose answer was lost, checked by a GET instead of re-sent
    adopted: int = 0
    not_yet_visible: int = 0  # 404s on a just-created user (replication lag), retried
    outcomes: dict[str, int] = field(default_factory=lambda: {"success": 0, "failed": 0, "skipped": 0})


@dataclass
class _Task:
    op: WriteOp
    phase: str  # invite | verify | lookup | patch | single | readback
    started: float
    target_id: str | None = None
    errors: int = 0  # 5xx / transport / 404-lag, per phase
    throttles: int = 0
    sends: int = 0
    ambiguous: bool = False  # a send of this phase may have been applied unseen
    adopted: bool = False
    invited_at: str | None = None  # the invitation answer's Date (server clock), to spot an old user
    reinvited: bool = False  # an earlier invite may have landed unseen (lookup found nothing, sent again)
    resume: str | None = None  # the write phase a readback checks, re-entered when its values are not there

    @property
    def writes(self) -> int:
        return 0 if self.phase in ("lookup", "verify", "readback") else 1


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: Any


def _lower_headers(h: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (h or {}).items()}


def _validate(op: WriteOp) -> str | None:
    """Why an op can't be run, or None."""
    if op.kind not in ("create", "update", "delete", "restore", "manager"):
        return f"unknown kind {op.kind!r}"
    if op.kind == "create":
        if not op.invitation or not op.invitation.get("invitedUserEmailAddress"):
            return "create needs invitation.invitedUserEmailAddress"
    elif not op.user_id:
        return f"{op.kind} needs user_id"
    try:  # one bad value must not sink the 19 other ops of its batch
        orjson.dumps([op.patch, op.invitation])
    except TypeError as exc:
        return f"patch/invitation is not JSON-serialisable ({exc})"
    return None


class BatchWriter:
    """Runs WriteOps through Graph $batch calls in parallel; yields one Outcome per op, as they finish."""

    def __init__(
        self,
        client: GraphClient,
        *,
        controller: AdaptiveController | None = None,
        max_batch: int = MAX_BATCH,
        max_attempts: int = 10,
        max_throttle_retries: int = 60,
        workers: int | None = None,
        window: int = 2_000,
    ) -> None:
        if not 1 <= max_batch <= MAX_BATCH:
            raise ValueError(f"max_batch must be 1..{MAX_BATCH}, got {max_batch}")
        self.client = client
        self.controller = controller or AdaptiveController()
        self.max_batch = max_batch
        self.max_attempts = max_attempts
        self.max_throttle_retries = max_throttle_retries
        self.workers = workers or self.controller.max_concurrency
        self.window = window
        self.stats = WriterStats()
        self._seq = itertools.count()

    def __repr__(self) -> str:
        return f"BatchWriter(tenant={self.client.conn.name!r}, stats={self.stats!r})"

    # ------------------------------------------------------------ requests
    def _request(self, task: _Task, rid: str) -> dict[str, Any]:
        op = task.op
        if task.phase == "invite":
            body = {
                "inviteRedirectUrl": INVITE_REDIRECT_URL,
                "sendInvitationMessage": False,
                "invitedUserType": "Member",
                **(op.invitation or {}),
            }
            return {"id": rid, "method": "POST", "url": "/invitations", "body": body,
                    "headers": {"Content-Type": "application/json"}}
        if task.phase == "verify":
            return {"id": rid, "method": "GET", "url": build_url(f"/users/{segment(task.target_id or '')}", {
                "$select": "id,createdDateTime,userPrincipalName,mail,userType,creationType,externalUserState"})}
        if task.phase == "readback":
            uid = segment(task.target_id or op.user_id or "")
            if op.kind == "manager" and task.resume == "single":
                return {"id": rid, "method": "GET", "url": build_url(f"/users/{uid}/manager", {"$select": "id"})}
            return {"id": rid, "method": "GET",
                    "url": build_url(f"/users/{uid}", {"$select": ",".join(sorted(op.patch or {}))})}
        if task.phase == "lookup":
            flt = self._lookup_filter(op)
            params: dict[str, Any] = {"$filter": flt, "$select": "id", "$top": 5}
            req: dict[str, Any] = {"id": rid, "method": "GET"}
            if needs_advanced(flt):
                params["$count"] = "true"
                req["headers"] = {"ConsistencyLevel": "eventual"}
            req["url"] = build_url("/users", params)
            return req
        uid = segment(task.target_id or op.user_id or "")
        if task.phase == "patch" or op.kind == "update":
            return {"id": rid, "method": "PATCH", "url": f"/users/{uid}", "body": op.patch or {},
                    "headers": {"Content-Type": "application/json"}}
        if op.kind == "delete":
            return {"id": rid, "method": "DELETE", "url": f"/users/{uid}"}
        if op.kind == "restore":
            return {"id": rid, "method": "POST", "url": f"/directory/deletedItems/{uid}/restore"}
        if op.kind == "manager":
            if op.manager_id is None:
                return {"id": rid, "method": "DELETE", "url": f"/users/{uid}/manager/$ref"}
            ref = f"{self.client.conn.graph_url}/users/{segment(op.manager_id)}"
            return {"id": rid, "method": "PUT", "url": f"/users/{uid}/manager/$ref",
                    "body": {"@odata.id": ref}, "headers": {"Content-Type": "application/json"}}
        raise AssertionError(f"no request for {op.kind}/{task.phase}")  # pragma: no cover

    @staticmethod
    def _lookup_filter(op: WriteOp) -> str:
        """The caller's lookup, ORed with the invited address (invited users get it as `mail`)."""
        address = (op.invitation or {}).get("invitedUserEmailAddress")
        by_mail = eq("mail", address).text if address and fits_literal(address) else None
        if op.lookup_filter and by_mail:
            return f"({op.lookup_filter}) or {by_mail}"
        return op.lookup_filter or by_mail or ""

    def _post_batch(self, tasks: list[_Task]) -> list[tuple[_Task, _Reply]] | BaseException:
        """Worker thread: send one $batch, return each task's reply, or the exception for all."""
        payload = {"requests": [self._request(t, str(i)) for i, t in enumerate(tasks)]}
        try:
            resp = self.client.send("POST", self.client.url("$batch"), json_body=payload)
            status, headers = resp.status_code, _lower_headers(resp.headers)
            try:
                body = orjson.loads(resp.content) if resp.content else None
            except orjson.JSONDecodeError:
                body = None
        except Exception as exc:  # noqa: BLE001 - handed back so every op of the batch still gets an outcome
            return exc
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("responses"), list):
            # The whole envelope failed: every task gets the same reply.
            return [(t, _Reply(status if status != 200 else 502, headers, body)) for t in tasks]
        by_id = {str(r.get("id")): r for r in body["responses"] if isinstance(r, dict)}
        out = []
        for i, t in enumerate(tasks):
            r = by_id.get(str(i))
            if r is None:  # missing from the answer: treat like a lost response
                out.append((t, _Reply(599, {}, None)))
            else:
                sub = _lower_headers(r.get("headers"))
                if "date" not in sub and "date" in headers:
                    sub["date"] = headers["date"]
                out.append((t, _Reply(int(r.get("status", 599)), sub, r.get("body"))))
        return out

    # ------------------------------------------------------------ state machine
    def _finish(self, task: _Task, status: Status, *, code: str | None = None, message: str | None = None,
                http_status: int | None = None, credential: bool = False) -> Outcome:
        self.stats.outcomes[status] += 1
        if task.adopted:
            self.stats.adopted += 1
        return Outcome(
            op_id=task.op.op_id, status=status, target_id=task.target_id or task.op.user_id,
            error_code=code, error_message=message, attempts=task.sends,
            duration_ms=int((time.monotonic() - task.started) * 1000), kind=task.op.kind,
            adopted=task.adopted, http_status=http_status, credential_failure=credential,
        )

    def _fail_message(self, task: _Task, method_url: str, status: int, msg: str | None) -> str:
        op = task.op
        who = task.target_id or op.user_id or (op.invitation or {}).get("invitedUserEmailAddress") or "?"
        return (f"tenant {self.client.conn.name!r}: {op.kind} of user {who} (op {op.op_id}) failed at "
                f"{method_url} with HTTP {status}: {msg or 'no message'}")

    def _advance(self, task: _Task, reply: _Reply) -> Outcome | float:
        """Apply one reply to a task: an Outcome when it is done, else the delay before its next send."""
        op, s = task.op, reply.status
        code, message = parse_error_body(reply.body)
        if task.phase == "readback":
            done = self._read_back(task, reply)
            if done is not None:
                return done
        if 200 <= s < 300:
            if task.writes:
                self.stats.writes_accepted += 1
            if task.phase == "invite":
                invited = (reply.body or {}).get("invitedUser") or {}
                task.target_id = invited.get("id")
                if not task.target_id:
                    return self._finish(task, "failed", code="NoInvitedUserId", http_status=s,
                                        message=self._fail_message(task, "POST /invitations", s,
                                                                   "response had no invitedUser.id"))
                task.invited_at = reply.headers.get("date")
                # The invitation API answers with the existing user when the address already has one: look
                # before writing anything to it (api/invitation-post.md).
                return self._next_phase(task, "verify")
            if task.phase == "verify":
                existing = self._existing_user(task, reply)
                if existing:
                    return self._finish(task, "failed", code="ExistingUserReturned", http_status=s,
                                        message=existing)
                return self._next_phase(task, "patch") if op.patch else self._finish(task, "success")
            if task.phase == "lookup":
                found = [u.get("id") for u in (reply.body or {}).get("value", []) if u.get("id")]
                if len(found) == 1:
                    task.target_id, task.adopted = found[0], True
                    log.info("tenant %s: op %s adopted existing user %s after a lost response",
                             self.client.conn.name, op.op_id, found[0])
                    return self._next_phase(task, "patch") if op.patch else self._finish(task, "success")
                if len(found) > 1:
                    return self._finish(task, "failed", code="DuplicateUsers", http_status=s, message=(
                        f"tenant {self.client.conn.name!r}: create op {op.op_id}: lookup matched users "
                        f"{', '.join(found)}; merge or delete the duplicates, then rerun"))
                # Nothing was created: safe to invite again (error count kept, so no endless loop). If the
                # lost invite did land (the lookup may lag behind), the user it returns is ours.
                task.reinvited = True
                return self._next_phase(task, "invite", keep_errors=True)
            if op.kind == "restore" and task.phase == "single" and op.patch:
                return self._next_phase(task, "patch")
            return self._finish(task, "success", http_status=s)
        if s == 429:
            self.stats.throttled += 1
            task.throttles += 1
            ra = parse_retry_after(reply.headers.get("retry-after"))
            if task.throttles > self.max_throttle_retries:
                return self._finish(task, "failed", code=code or "TooManyRequests", http_status=s,
                                    message=self._fail_message(task, "$batch", s, (message or "") +
                                                               f" (still throttled after {task.throttles} tries)"))
            return ra if ra is not None else backoff_delay(task.throttles, base=1.0, cap=60.0)
        if s == 424:  # failed dependency (only with dependsOn, which this writer avoids): nothing ran
            return self._retry_error(task, s, code, message)
        if s == 401:
            self.client.tokens.token(force_refresh=True)
            return self._retry_error(task, s, code, message)
        if s == 404:
            if task.phase in ("patch", "verify") and op.kind == "create":
                self.stats.not_yet_visible += 1
                return self._retry_error(task, s, code, message)  # replication lag after the invite
            if op.kind == "delete":
                if task.ambiguous:
                    return self._finish(task, "success", http_status=s)
                return self._finish(task, "skipped", code=code or "Request_ResourceNotFound", http_status=s,
                                    message=f"user {op.user_id} not found in tenant "
                                            f"{self.client.conn.name!r}; nothing to delete")
            if op.kind == "restore" and task.phase == "single" and task.ambiguous:
                return self._next_phase(task, "patch") if op.patch else self._finish(task, "success")
        if s >= 500 or s == 599:
            self.stats.server_errors += 1
            if task.writes:
                task.ambiguous = True
            return self._retry_error(task, s, code, message)
        req = self._request(task, "x")
        where = f"{req['method']} {endpoint_of(req['url'])}"
        credential = False
        if s == 403:
            # Graph answers 403 both when the app lacks the permission and when this one user is off limits
            # (api/user-update.md: other users' phones and otherMails only on non-administrators). The
            # token's roles tell them apart: with the permission in hand, the refusal is about the user.
            needed = write_permissions(req["method"], req["url"])
            roles = self._app_roles()
            credential = roles is None or not roles.intersection(needed)
            if credential:
                perm = permission_hint(req["method"], req["url"])
                message = f"{message or 'access denied'}; grant the app {perm} and give admin consent"
        return self._finish(task, "failed", code=code or f"HTTP{s}", http_status=s, credential=credential,
                            message=self._fail_message(task, where, s, message))

    def _read_back(self, task: _Task, reply: _Reply) -> Outcome | float | None:
        """A readback's answer: done when the lost write's values are there, else back to that write.

        None leaves the reply to the common handling (429, 401, 5xx: the readback itself is retried). Any
        other refusal of the read (a property that cannot be selected, say) falls back to re-sending the
        write, which is idempotent: never worse than before the readback existed.
        """
        s, op, resume = reply.status, task.op, task.resume or "single"
        if s == 429 or s == 401 or s >= 500:
            return None
        body = reply.body if 200 <= s < 300 and isinstance(reply.body, dict) else None
        if op.kind == "manager" and resume == "single":
            if s == 404:  # no manager: what a removal (manager_id None) leaves
                have: str | None = ""
            else:
                have = str(body.get("id") or "") if body is not None else None
            landed = have is not None and have.lower() == str(op.manager_id or "").lower()
        else:
            landed = body is not None and _has_values(body, op.patch or {})
        if landed:
            log.info("tenant %s: op %s: the lost %s had landed (read back)", self.client.conn.name, op.op_id, resume)
            return self._finish(task, "success", http_status=s)
        task.phase, task.ambiguous = resume, False
        return 0.0

    def _app_roles(self) -> set[str] | None:
        """The application permissions in the current access token (its `roles` claim), or None."""
        try:
            token = self.client.tokens.token()
            payload = token.split(".")[1]
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except Exception:  # noqa: BLE001 - no readable token: treat the 403 as the app's own
            return None
        roles = claims.get("roles") if isinstance(claims, dict) else None
        return {str(r) for r in roles} if isinstance(roles, list) else None

    def _existing_user(self, task: _Task, reply: _Reply) -> str | None:
        """A Failure message when the invitation returned a user that existed before it, else None.

        The user is ours only if the invitation made it: created at (or after) the invitation answer, on
        the server's clock. An older one belongs to someone else (another pair, an admin's invite), and
        writing our attributes over it would be exactly what Entra never does.
        """
        if task.reinvited:
            return None  # our own lost invite; a user older than it would have matched the mail lookup
        body = reply.body if isinstance(reply.body, dict) else {}
        created, answered = _parse_time(body.get("createdDateTime")), _parse_time(task.invited_at)
        if created is None or answered is None or created >= answered - EXISTING_USER_SLACK_S:
            return None
        facts = ", ".join(f"{k}={body.get(k)!r}" for k in ("userPrincipalName", "mail", "userType", "creationType",
                                                           "externalUserState", "createdDateTime"))
        return (f"tenant {self.client.conn.name!r}: create op {task.op.op_id}: POST /invitations returned the "
                f"existing user {task.target_id} ({facts}) instead of creating one; it was not changed. Match it "
                "to its source user (adopt) or remove it, then rerun")

    def _retry_error(self, task: _Task, s: int, code: str | None, message: str | None) -> Outcome | float:
        task.errors += 1
        if task.errors >= self.max_attempts:
            return self._finish(task, "failed", code=code or f"HTTP{s}", http_status=s, credential=s == 401,
                                message=self._fail_message(task, "$batch", s, (message or "no answer") +
                                                           f" (gave up after {task.errors} errors)"))
        if task.phase == "invite" and task.ambiguous:
            task.phase = "lookup"  # never re-invite blind: look for the user first
            task.ambiguous = False
            self.stats.lookups += 1
        elif task.ambiguous and self._can_read_back(task):
            task.resume, task.phase, task.ambiguous = task.phase, "readback", False
            self.stats.readbacks += 1
        return backoff_delay(task.errors, base=0.25, cap=20.0)

    @staticmethod
    def _can_read_back(task: _Task) -> bool:
        """A lost PATCH (of an update, or after an invite or restore) or manager reference can be read back;
        a password cannot, so such a PATCH is re-sent as before."""
        op = task.op
        if task.phase == "single" and op.kind == "manager":
            return True
        sends_patch = task.phase == "patch" or (task.phase == "single" and op.kind == "update")
        return sends_patch and bool(op.patch) and not (set(op.patch) & WRITE_ONLY)

    @staticmethod
    def _next_phase(task: _Task, phase: str, *, keep_errors: bool = False) -> float:
        task.phase = phase
        if not keep_errors:
            task.errors = 0
        task.throttles = 0
        task.ambiguous = False
        return 0.0

    # ------------------------------------------------------------ driver
    def run(self, ops: Iterable[WriteOp]) -> Iterator[Outcome]:
        """Yield exactly one Outcome per op (order of completion). Ops are read lazily.

        Exhaust the iterator: closing it early abandons the ops still in flight (their writes may
        or may not have happened), which is exactly what the caller's write journal is for.
        """
        ctrl = self.controller
        heap: list[tuple[float, int, _Task]] = []
        waiting: dict[str, deque[_Task]] = {}  # later ops for a user whose earlier op is running
        busy: set[str] = set()
        inflight: dict[Future[Any], list[_Task]] = {}
        active = 0
        source = iter(ops)
        exhausted = False
        seen: set[str] = set()

        def push(task: _Task, delay: float) -> None:
            heapq.heappush(heap, (time.monotonic() + delay, next(self._seq), task))

        def release(task: _Task) -> None:
            uid = task.op.user_id
            if uid is None:
                return
            queue = waiting.get(uid)
            if queue:
                nxt = queue.popleft()
                nxt.started = time.monotonic()
                push(nxt, 0.0)
                if not queue:
                    del waiting[uid]
            else:
                busy.discard(uid)

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix=f"graph-{self.client.conn.name}")
        try:
            while True:
                while not exhausted and active < self.window:
                    try:
                        op = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    task = _Task(op, "invite" if op.kind == "create" else "single", time.monotonic())
                    problem = _validate(op) or ("duplicate op_id" if op.op_id in seen else None)
                    if problem:
                        yield self._finish(task, "failed", code="InvalidWriteOp", message=(
                            f"tenant {self.client.conn.name!r}: op {op.op_id}: {problem}; fix the plan"))
                        continue
                    seen.add(op.op_id)
                    if op.kind == "update" and not op.patch:
                        yield self._finish(task, "skipped", message=(
                            f"tenant {self.client.conn.name!r}: op {op.op_id}: update of user {op.user_id} "
                            "has no attribute to change"))
                        continue
                    active += 1
                    if op.user_id and op.user_id in busy:
                        waiting.setdefault(op.user_id, deque()).append(task)
                        continue
                    if op.user_id:
                        busy.add(op.user_id)
                    push(task, 0.0)
                if active == 0 and exhausted:
                    break
                now = time.monotonic()
                wake = 0.5
                while heap and heap[0][0] <= now and len(inflight) < ctrl.max_in_flight:
                    batch: list[_Task] = []
                    while heap and heap[0][0] <= now and len(batch) < self.max_batch:
                        batch.append(heapq.heappop(heap)[2])
                    need = sum(t.writes for t in batch)
                    delay = ctrl.reserve(need)
                    if delay > 0:
                        for t in batch:
                            push(t, 0.0)
                        wake = min(wake, delay)
                        break
                    for t in batch:
                        t.sends += 1
                    self.stats.batches += 1
                    self.stats.subrequests += len(batch)
                    inflight[pool.submit(self._post_batch, batch)] = batch
                if heap and len(inflight) < ctrl.max_in_flight:
                    wake = min(wake, max(heap[0][0] - time.monotonic(), 0.0))
                if not inflight:
                    time.sleep(max(wake, 0.001))
                    continue
                done, _ = wait(list(inflight), timeout=max(wake, 0.001), return_when=FIRST_COMPLETED)
                for fut in done:
                    tasks = inflight.pop(fut)
                    result = fut.result()
                    if isinstance(result, BaseException):
                        replies = self._transport_failure(tasks, result)
                        ctrl.on_error()
                    else:
                        replies = result
                        self._feed(replies)
                    for task, reply in replies:
                        if reply is None:
                            text = str(result) if isinstance(result, GraphError) else (
                                f"tenant {self.client.conn.name!r}: op {task.op.op_id}: $batch failed "
                                f"({type(result).__name__}: {str(result)[:200]})")
                            out: Outcome | float = self._finish(
                                task, "failed", code=type(result).__name__, message=text,
                                credential=isinstance(result, AuthError | PermissionError_))
                        else:
                            out = self._advance(task, reply)
                        if isinstance(out, Outcome):
                            active -= 1
                            release(task)
                            yield out
                        else:
                            push(task, out)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _feed(self, replies: list[tuple[_Task, _Reply]]) -> None:
        """One controller sample per batch.

        A 429 carrying `x-ms-throttle-scope` is a quota decision (documented for the identity
        service), so it cuts the pace; scope-less 429s (transient, gateway) only count as congestion
        when they are most of the batch - otherwise a steady trickle of them would starve the writer.
        """
        writes = [(t, r) for t, r in replies if t.writes]
        accepted = sum(1 for _, r in writes if 200 <= r.status < 300)
        throttled = [r for _, r in replies if r.status == 429]
        if throttled:
            quota = any("x-ms-throttle-scope" in r.headers for r in throttled)
            if quota or len(throttled) * 2 >= max(len(replies), 1):
                waits = [w for r in throttled if (w := parse_retry_after(r.headers.get("retry-after"))) is not None]
                self.controller.on_throttle(min(waits) if waits else None, accepted, quota)
                return
        pcts = []
        for _, r in writes:
            value = r.headers.get("x-ms-throttle-limit-percentage")
            if value:
                try:
                    pct = float(value)
                except ValueError:
                    continue
                # Graph documents the value as 0.8-1.8 (a fraction of the limit); accept 80-180 too.
                pcts.append(pct * 100.0 if pct <= 2.0 else pct)
        if accepted:
            self.controller.on_success(max(pcts) if pcts else None, accepted)

    def _transport_failure(self, tasks: list[_Task], exc: BaseException) -> list[tuple[_Task, _Reply | None]]:
        """A lost batch: TLS/auth problems fail its ops; resets and timeouts are retried (ambiguously)."""
        if not isinstance(exc, requests.exceptions.RequestException | GraphError) or isinstance(
                exc, TlsError | AuthError | PermissionError_):
            return [(t, None) for t in tasks]  # retrying can't fix config or a bad op: fail fast, naming the cause
        self.stats.transport_errors += 1
        log.info("tenant %s: $batch of %d lost (%s); retrying", self.client.conn.name, len(tasks),
                 type(exc).__name__)
        return [(t, _Reply(599, {}, None)) for t in tasks]
