"""JSON batching: POST /v1.0/$batch, up to 20 requests with dependsOn (concepts/json-batching.md).

Each sub-request runs through SandboxApp.execute, exactly the path of a top-level request, so throttling,
faults and errors inside a batch are those of the same call made alone.
"""

from __future__ import annotations

import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

import orjson

from .wire import MAX_BATCH, GraphError, GraphRequest, GraphResponse, error_body, parse_query

if TYPE_CHECKING:
    from .app import SandboxApp


async def run_batch(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    """Check the payload like Graph, then run the requests in dependsOn order; a failed dependency is 424."""
    now = app.clock.now()

    def bad(message: str) -> GraphResponse:
        return GraphResponse(400, error_body("BadRequest", message, req.request_id, req.client_request_id, now))

    try:
        payload = req.json()
    except GraphError as exc:
        return bad(exc.message)
    items = payload.get("requests")
    if not isinstance(items, list) or not items:
        return bad("Invalid batch payload format: the body needs a non-empty 'requests' array.")
    if len(items) > MAX_BATCH:
        return bad(f"Invalid batch payload format: {len(items)} requests, the limit is {MAX_BATCH}.")
    ids: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            return bad(f"Invalid batch payload format: request #{i + 1} is not an object.")
        rid, method, url = item.get("id"), item.get("method"), item.get("url")
        if not isinstance(rid, str | int) or str(rid) == "":
            return bad(f"Invalid batch payload format: request #{i + 1} has no 'id'.")
        if not isinstance(method, str) or method.upper() not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            return bad(f"Invalid batch payload format: request '{rid}' has no valid 'method'.")
        if not isinstance(url, str) or not url:
            return bad(f"Invalid batch payload format: request '{rid}' has no 'url'.")
        # json-batching.md: "The id ... must be unique within the batch"; Graph compares them without case.
        if str(rid).lower() in (i.lower() for i in ids):
            return bad(f"Batch request ids must be unique; '{rid}' appears more than once (ids are compared "
                       "case-insensitively).")
        if urlsplit(url).scheme:
            return bad(f"Invalid batch payload format: request '{rid}' has an absolute url; use a url "
                       "relative to the version, e.g. /users/{id}.")
        sub_headers = item.get("headers") or {}
        if not isinstance(sub_headers, dict):
            return bad(f"Invalid batch payload format: request '{rid}' has headers that are not an object.")
        if item.get("body") is not None and not any(str(k).lower() == "content-type" for k in sub_headers):
            return bad(f"Write request id : {rid} does not contain Content-Type header or body.")
        ids.append(str(rid))
    for item in items:
        deps = item.get("dependsOn") or []
        if not isinstance(deps, list) or any(str(d) not in ids or str(d) == str(item["id"]) for d in deps):
            return bad(f"Invalid batch payload format: request '{item['id']}' depends on an unknown id.")
    done: dict[str, GraphResponse] = {}
    pending = list(items)
    out: list[dict] = []
    reset = False
    while pending:
        progressed = False
        for item in list(pending):
            deps = [str(d) for d in item.get("dependsOn") or []]
            if any(d not in done for d in deps):
                continue
            pending.remove(item)
            progressed = True
            iid = str(item["id"])
            failed = [d for d in deps if done[d].status >= 400]
            if failed:
                resp = GraphResponse(424, error_body("FailedDependency", f"The request '{iid}' was not "
                                     f"executed because its dependency '{failed[0]}' failed.",
                                     str(uuid.uuid4()), req.client_request_id, now))
            else:
                resp = await _batch_item(app, req, item, base)
            reset = reset or resp.reset
            done[iid] = resp
            entry: dict = {"id": iid, "status": resp.status, "headers": resp.headers}
            if resp.body:
                entry["body"] = orjson.loads(resp.body)
            out.append(entry)
        if not progressed:
            return bad("Invalid batch payload format: dependsOn forms a cycle.")
    return GraphResponse(200, orjson.dumps({"responses": out}), reset=reset)

async def _batch_item(app: SandboxApp, req: GraphRequest, item: dict, base: str) -> GraphResponse:
    """One sub-request through the same path as a top-level request (auth context, throttle, faults)."""
    url = item["url"]
    parts = urlsplit(url)
    path = unquote(parts.path)
    if not path.startswith("/"):
        path = "/" + path
    if path.lower().startswith("/v1.0/"):
        path = path[5:]
    sub_id = str(uuid.uuid4())
    headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
    body = item.get("body")
    raw_body = None if body is None else (body.encode() if isinstance(body, str) else orjson.dumps(body))
    sub = GraphRequest(item["method"].upper(), path, parse_query(parts.query), headers, raw_body, req.tenant,
                       req.claims, sub_id, req.client_request_id, parts.query)
    resp = await app.execute(sub, base)
    resp.headers.setdefault("request-id", sub_id)
    resp.headers.setdefault("date", formatdate(app.clock.now(), usegmt=True))  # the server's clock
    if resp.body is not None:
        resp.headers.setdefault("content-type", "application/json")
    return resp
