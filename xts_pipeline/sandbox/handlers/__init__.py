"""Graph v1.0 handlers of the sandbox, one module per resource. Each takes (app, request, base_url, *path ids).

routes.py maps method and path to these names; common.py and listing.py hold what the resources share.
"""

from .applications import create_extension, get_application, list_extensions
from .common import user_props
from .deleted_items import get_deleted, list_deleted, purge_deleted, restore_deleted
from .delta import users_delta
from .directory_roles import DIRECTORY_ROLE_PROPS, get_directory_role, list_directory_roles, list_role_members
from .groups import get_group, list_groups, list_members
from .invitations import create_invitation
from .organization import get_organization
from .partners import (
    default_partner,
    get_identity_sync,
    get_partner,
    list_partners,
    patch_partner,
    put_identity_sync,
)
from .users import (
    count_users,
    create_user,
    delete_manager,
    delete_user,
    get_manager,
    get_user,
    list_users,
    patch_user,
    put_manager,
)

__all__ = [
    "DIRECTORY_ROLE_PROPS", "count_users", "create_extension", "create_invitation", "create_user", "default_partner",
    "delete_manager", "delete_user", "get_application", "get_deleted", "get_directory_role", "get_group",
    "get_identity_sync", "get_manager", "get_organization", "get_partner", "get_user", "list_deleted",
    "list_directory_roles", "list_extensions", "list_groups", "list_members", "list_partners", "list_role_members",
    "list_users", "patch_partner", "patch_user", "purge_deleted", "put_identity_sync", "put_manager",
    "restore_deleted", "user_props", "users_delta",
]
