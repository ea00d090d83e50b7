"""What every Graph handler of the sandbox shares: not-found errors, @odata.context, response
assembly, $top and ConsistencyLevel, and the tenant's registered extension properties."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..wire import USER_PROPS, GraphError, GraphRequest

if TYPE_CHECKING:
    from ..app import SandboxApp
    from ..store import Tenant


_USER_TYPE = "#microsoft.graph.user"


def _not_found(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{key}' does not exist or one of its queried reference-property objects are not "
                      "present.")


def _extensions(app: SandboxApp, tenant: Tenant) -> dict[str, str]:
    """Registered extension property name -> dataType (cached; dropped when one is registered)."""
    cache = app.__dict__.setdefault("_ext_cache", {})
    names = cache.get(tenant.tenant_id)
    if names is None:
        names = cache[tenant.tenant_id] = {e["name"]: e.get("dataType", "String")
                                           for e in app.store.extensions(tenant)}
    return names


_EXT_TYPES = {"String": (str,), "DateTime": (str,), "Binary": (str,), "Boolean": (bool,),
              "Integer": (int,), "LargeInteger": (int,)}


def user_props(app: SandboxApp, tenant: Tenant) -> list[str]:
    return [*USER_PROPS, *sorted(_extensions(app, tenant))]


def _context(base: str, what: str, select: list[str] | None = None) -> str:
    return f"{base}/v1.0/$metadata#{what}" + (f"({','.join(select)})" if select else "")


def _parse_top(req: GraphRequest, default: int = 100) -> int:
    raw = req.param("top")
    if raw is None:
        return default
    try:
        top = int(raw)
    except ValueError:
        top = -1
    if not 1 <= top <= 999:
        raise GraphError(400, "Request_BadRequest",
                         f"Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive.")
    return top


def _eventual(req: GraphRequest) -> bool:
    return (req.headers.get("consistencylevel") or "").lower() == "eventual"


def _assemble(context: str, items: list[bytes], next_link: str | None = None, count: int | None = None,
              delta_link: str | None = None) -> bytes:
    parts = [b'{"@odata.context":', orjson.dumps(context)]
    if count is not None:
        parts += [b',"@odata.count":', str(count).encode()]
    if next_link:
        parts += [b',"@odata.nextLink":', orjson.dumps(next_link)]
    if delta_link:
        parts += [b',"@odata.deltaLink":', orjson.dumps(delta_link)]
    parts += [b',"value":[', b",".join(items), b"]}"]
    return b"".join(parts)


def _entity(base: str, what: str, d: dict, odata_type: str | None = None) -> dict:
    head = {"@odata.context": _context(base, what)}
    if odata_type:
        head["@odata.type"] = odata_type
    return {**head, **d}
