"""What Graph refuses in a user write, property by property, with the doc sentence each rule comes from.

Kept apart from the handlers so each rule is one table entry or one small check, and the cost stays one
pass over the request body (bench/sandbox_bench.py measures it).
"""

from __future__ import annotations

import re

# resources/user.md, "Maximum length is N characters" (and "The maximum length is 16 characters" for
# employeeId; "The maximum length of the company name is 64 characters").
MAX_LENGTHS: dict[str, int] = {
    "city": 128, "companyName": 64, "country": 128, "department": 64, "displayName": 256, "employeeId": 16,
    "givenName": 64, "jobTitle": 128, "mailNickname": 64, "mobilePhone": 64, "officeLocation": 128,
    "postalCode": 40, "state": 128, "streetAddress": 1024, "surname": 64,
}
# Not documented per property: the directory's own limit for these strings (docs/sandbox.md, "Where
# Microsoft is silent": the stricter choice).
SILENT_MAX_LENGTHS: dict[str, int] = {"employeeType": 64, "faxNumber": 64, "preferredLanguage": 64}
# UPN: alias@domain, "This property can't contain accent characters. Only the following characters are
# allowed A - Z, a - z, 0 - 9, ' . - _ ! # ^ ~" (resources/user.md); alias at most 64, domain at most 48.
_UPN = re.compile(r"^[A-Za-z0-9'._!#^~-]{1,64}@[A-Za-z0-9.-]{1,48}$")
# mail / otherMails: "This property can't contain accent characters" (resources/user.md).
_MAIL = re.compile(r"^[\x21-\x7e]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]+$")
# resources/extensionproperty.md: "String: 256 characters maximum"; Binary: 256 bytes.
EXTENSION_STRING_MAX = 256
# resources/onpremisesextensionattributes.md: "Each attribute can store up to 1024 characters."
ON_PREM_ATTR_MAX = 1024
ON_PREM_ATTRS = tuple(f"extensionAttribute{i}" for i in range(1, 16))
# resources/extensionproperty.md, targetObjects: "Supported values are: User, Group, AdministrativeUnit,
# Application, Device, Organization".
EXTENSION_TARGETS = frozenset({"User", "Group", "AdministrativeUnit", "Application", "Device", "Organization"})
# resources/invitation.md: the properties of an invitation (invitedUser/invitedUserSponsors are its
# relationships; inviteRedeemUrl and status are read-only answers).
INVITATION_PROPS = frozenset({
    "invitedUserDisplayName", "invitedUserEmailAddress", "invitedUserMessageInfo", "sendInvitationMessage",
    "inviteRedirectUrl", "invitedUserType", "resetRedemption", "invitedUser", "invitedUserSponsors",
    "@odata.type",
})
# api/user-update.md: "Updating other users' businessPhones, mobilePhone, or otherMails property is only
# allowed on users who are non-administrators or assigned one of the following roles: Directory Readers,
# Guest Inviter, Message Center Reader, and Reports Reader." The current page adds accountEnabled to these
# "sensitive user properties" ("such as accountEnabled, mobilePhone, and otherMails for users with
# privileged administrator roles ... the app must be assigned a higher privileged administrator role").
SENSITIVE_PROPS = frozenset({"businessPhones", "mobilePhone", "otherMails", "accountEnabled"})
NON_ADMIN_ROLES = frozenset({"Directory Readers", "Guest Inviter", "Message Center Reader", "Reports Reader"})


class Refusal(ValueError):
    """A value Graph refuses: status, Graph's code and message."""

    def __init__(self, message: str, status: int = 400, code: str = "Request_BadRequest") -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(prop: str, why: str = "") -> Refusal:
    """Graph's wording for a refused property value."""
    return Refusal(f"Invalid value specified for property '{prop}' of resource 'User'." + (f" {why}" if why else ""))


def check_value(prop: str, value: object, creating: bool) -> None:
    """Per-property rules beyond the type: lengths, cardinality, characters, clearing."""
    if prop == "displayName" and (value is None or value == ""):
        # resources/user.md: "This property is required when a user is created and it cannot be cleared
        # during updates."
        raise invalid(prop, "It is required and cannot be cleared.")
    limit = MAX_LENGTHS.get(prop) or SILENT_MAX_LENGTHS.get(prop)
    if limit is not None and isinstance(value, str) and len(value) > limit:
        raise invalid(prop, f"The maximum length is {limit} characters; the value has {len(value)}.")
    if prop == "businessPhones" and isinstance(value, list):
        if len(value) > 1:
            # resources/user.md: "Although this is a string collection, only one number can be set for this
            # property."
            raise invalid(prop, "Only one number can be set for this property.")
        if any(len(v) > 64 for v in value):
            raise invalid(prop, "The maximum length is 64 characters.")
    if prop == "userPrincipalName" and isinstance(value, str) and not _UPN.fullmatch(value):
        raise Refusal("Property userPrincipalName is invalid: it must be alias@domain without accent "
                      "characters, using only A-Z a-z 0-9 ' . - _ ! # ^ ~ (alias at most 64, domain at most 48).")
    if prop == "mail" and isinstance(value, str) and not _MAIL.fullmatch(value):
        raise invalid(prop, "The mail address is not valid or contains accent characters.")
    if prop == "otherMails" and isinstance(value, list):
        for v in value:
            if not _MAIL.fullmatch(v):
                raise invalid(prop, f"'{v}' is not a valid address or contains accent characters.")
    if prop == "usageLocation" and value is not None and not (
            isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2}", value)):
        # resources/user.md: "A two-letter country code (ISO standard 3166)."
        raise invalid(prop, "Use a two-letter country code (ISO 3166).")


def check_extension_value(prop: str, data_type: str, value: object) -> None:
    if data_type == "String" and isinstance(value, str) and len(value) > EXTENSION_STRING_MAX:
        raise invalid(prop, f"A String extension property holds at most {EXTENSION_STRING_MAX} characters.")
    if data_type == "Binary" and isinstance(value, str) and len(value) > 4 * ((EXTENSION_STRING_MAX + 2) // 3):
        raise invalid(prop, f"A Binary extension property holds at most {EXTENSION_STRING_MAX} bytes.")


def check_on_prem_attributes(value: object, synced: bool) -> dict:
    """onPremisesExtensionAttributes on a write: the 15 strings, writable for cloud-only users only."""
    if synced:
        # resources/onpremisesextensionattributes.md: "for an onPremisesSyncEnabled user, the source of
        # authority for this set of properties is the on-premises Active Directory ... and is read-only."
        raise Refusal("Unable to update the specified properties for on-premises mastered Directory Sync "
                      "objects or objects currently undergoing migration.")
    if not isinstance(value, dict):
        raise invalid("onPremisesExtensionAttributes", "It must be an object of extensionAttribute1..15.")
    for k, v in value.items():
        if k == "@odata.type":
            continue
        if k not in ON_PREM_ATTRS:
            raise Refusal(f"Invalid property '{k}' on type 'microsoft.graph.onPremisesExtensionAttributes'.")
        if v is not None and not isinstance(v, str):
            raise invalid("onPremisesExtensionAttributes", f"{k} must be a string or null.")
        if isinstance(v, str) and len(v) > ON_PREM_ATTR_MAX:
            raise invalid("onPremisesExtensionAttributes",
                          f"{k} holds at most {ON_PREM_ATTR_MAX} characters; the value has {len(v)}.")
    return {k: v for k, v in value.items() if k in ON_PREM_ATTRS}


def empty_on_prem_attributes() -> dict:
    return dict.fromkeys(ON_PREM_ATTRS)
