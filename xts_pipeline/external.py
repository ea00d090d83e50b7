"""The one definition of an "external" (B2B) user, for Python rows and for DuckDB SQL.

A user is external when any of these holds (Graph's user resource, docs "Properties of a B2B guest user"):
creationType is `Invitation`; userType is `Guest`; the UPN carries `#EXT#`; or externalUserState is set
(`PendingAcceptance` / `Accepted`). The last one catches an internal member converted to B2B ("invite
internal users to B2B collaboration"): its creationType stays null, its UPN keeps its own domain and its
userType stays Member, but it now signs in with an outside identity, so it must never be synced onward.

The loop guard (scoping.is_internal_member, guardrails.sources), adoption and the planner's invariants
all use this module, so "external" means the same thing everywhere. Comparisons ignore case.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Graph name -> staging/target table column name (rows from DuckDB use snake_case).
_FIELDS = {"creationType": "creation_type", "userType": "user_type", "userPrincipalName": "user_principal_name",
           "externalUserState": "external_user_state"}


def _get(user: Mapping[str, Any], graph_name: str) -> Any:
    value = user.get(graph_name)
    return user.get(_FIELDS[graph_name]) if value is None else value


def is_external(user: Mapping[str, Any]) -> bool:
    """True for a B2B user (invited, guest, #EXT# UPN, or any externalUserState); Graph or snake_case keys."""
    creation = _get(user, "creationType")
    user_type = _get(user, "userType")
    upn = _get(user, "userPrincipalName")
    state = _get(user, "externalUserState")
    return (
        (isinstance(creation, str) and creation.casefold() == "invitation")
        or (isinstance(user_type, str) and user_type.casefold() == "guest")
        or (isinstance(upn, str) and "#ext#" in upn.casefold())
        or (state is not None and str(state).strip() != "")
    )


def external_sql(alias: str) -> str:
    """A SQL boolean over `alias`'s creation_type, user_type, user_principal_name, external_user_state.

    `alias` is a table alias of a table with the target_users columns (a constant, never user input).
    """
    if not alias.isidentifier():
        raise ValueError(f"external_sql: {alias!r} is not a SQL alias")
    return external_sql_over(f"{alias}.creation_type", f"{alias}.user_type", f"{alias}.user_principal_name",
                             f"{alias}.external_user_state")


def external_sql_over(creation_type: str, user_type: str, user_principal_name: str, external_user_state: str) -> str:
    """The same rule over four SQL expressions (code constants, e.g. a JSON path into a raw Graph document)."""
    return (f"(lower(coalesce({creation_type}, '')) = 'invitation' OR lower(coalesce({user_type}, '')) = 'guest' "
            f"OR upper(coalesce({user_principal_name}, '')) LIKE '%#EXT#%' "
            f"OR coalesce(trim({external_user_state}), '') <> '')")
