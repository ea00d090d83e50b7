"""POST /invitations: guests (or members) invited into the tenant (resources/invitation.md)."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

from .. import validation
from ..clock import iso
from ..wire import GraphError, GraphRequest, GraphResponse, _ok
from .common import _context

if TYPE_CHECKING:
    from ..app import SandboxApp


def create_invitation(app: SandboxApp, req: GraphRequest, base: str) -> GraphResponse:
    t = req.tenant
    body = req.json()
    if not t.allow_invitations:
        raise GraphError(403, "Authorization_RequestDenied",
                         f"Guest invitations not allowed for your company (tenant '{t.name}'). Contact your "
                         "company administrator, or allow invitations with the sandbox admin route.")
    unknown = sorted(k for k in body if k not in validation.INVITATION_PROPS)
    if unknown:
        # resources/invitation.md lists the invitation's properties; anything else is not on the type.
        raise GraphError(400, "BadRequest", f"Invalid property '{unknown[0]}': it does not exist on type "
                         "'microsoft.graph.invitation' (a user's attributes are set with PATCH /users/{id}).")
    email = body.get("invitedUserEmailAddress")
    redirect = body.get("inviteRedirectUrl")
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise GraphError(400, "BadRequest", "The invitedUserEmailAddress property is missing or not a valid "
                         "e-mail address.")
    if not isinstance(redirect, str) or not redirect:
        raise GraphError(400, "BadRequest", "The inviteRedirectUrl property is required.")
    user_type = body.get("invitedUserType") or "Guest"
    if user_type not in ("Guest", "Member"):
        raise GraphError(400, "BadRequest", "invitedUserType must be 'Guest' or 'Member'.")
    display = body.get("invitedUserDisplayName")
    existing = app.store.find_active_by_mail(t, email)
    if existing is not None and existing.get("creationType") != "Invitation":
        raise GraphError(400, "Request_BadRequest", "Another object with the same value for property "
                         f"proxyAddresses already exists (mail '{email}' belongs to a member of tenant '{t.name}').")
    now = app.clock.now()
    if existing is None:
        local, domain = email.rsplit("@", 1)
        upn = f"{local}_{domain}#EXT#@{t.domain}"
        if app.store.upn_taken(t, upn):
            upn = f"{local}_{domain}{uuid.uuid4().hex[:4]}#EXT#@{t.domain}"
        user = {"id": str(uuid.uuid4()), "userPrincipalName": upn, "mail": email, "otherMails": [email],
                "displayName": display or local, "businessPhones": [], "accountEnabled": True,
                "userType": user_type, "creationType": "Invitation", "externalUserState": "PendingAcceptance",
                "externalUserStateChangeDateTime": iso(now), "showInAddressList": False,
                "onPremisesSyncEnabled": None, "createdDateTime": iso(now)}
        user = app.store.create_user(t, user)
        app.note_write(t, user["id"], created=True)
    else:
        user = existing
    inv_id = str(uuid.uuid4())
    resp = {
        "@odata.context": _context(base, "invitations/$entity"),
        "id": inv_id,
        "inviteRedeemUrl": f"{base}/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3d"
                           f"{t.tenant_id}%26user%3d{user['id']}%26ticket%3d{uuid.uuid4().hex}",
        "invitedUserDisplayName": display,
        "invitedUserType": user_type,
        "invitedUserEmailAddress": email,
        "sendInvitationMessage": bool(body.get("sendInvitationMessage", False)),
        "resetRedemption": bool(body.get("resetRedemption", False)),
        "inviteRedirectUrl": redirect,
        "status": user.get("externalUserState") or "PendingAcceptance",
        "invitedUserMessageInfo": body.get("invitedUserMessageInfo") or {
            "messageLanguage": None, "ccRecipients": [{"emailAddress": {"name": None, "address": None}}],
            "customizedMessageBody": None},
        "invitedUser": {"id": user["id"]},
    }
    return _ok(resp, 201)
