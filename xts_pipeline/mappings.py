"""Attribute-mapping semantics of Entra provisioning, and Entra's default cross-tenant mappings.

A ``Mapping`` says how one *target* attribute gets its value (Entra's four mapping types):

- ``Direct``: copy the source attribute ``source``;
- ``Constant``: always ``value``;
- ``Expression``: evaluate ``expression`` (see ``xts_pipeline.expressions``);
- ``None``: leave the target alone; only ``default`` is written, when the object is created and
  whenever the target attribute is empty ("The target attribute is left unmodified. However, if the
  target attribute is ever empty, it's populated with the default value that you specify",
  customize-application-attributes.md). On update the default travels under ``FILL_KEY`` and the
  planner writes it only where the target attribute is empty.

``default`` ("default value if null") is applied on create only, and ``apply`` is ``Always`` or
``OnCreateOnly`` ("Only during object creation"). A null mapped value is not provisioned: "Microsoft
Entra ID currently can't provision null attributes. If an attribute is null on the user object, it is
skipped" (app-provisioning/known-issues.md); ``clear_when_null: true`` opts one mapping into clearing
the target attribute instead (our addition, off by default).  Attribute names are Microsoft Graph property
names (our source users are Graph-shaped); Entra's schema names that differ from Graph's
(``mobile``, ``physicalDeliveryOfficeName``, ``objectId``...) are accepted and translated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from .expressions import IGNORE_FLOW, CompiledExpression, ExpressionEvaluationError, compile

MappingType = Literal["Direct", "Constant", "Expression", "None"]
ApplyMode = Literal["Always", "OnCreateOnly"]

# Entra's provisioning-schema attribute names -> Microsoft Graph user property names.
ENTRA_TO_GRAPH: dict[str, str] = {
    "objectId": "id",
    "mobile": "mobilePhone",
    "physicalDeliveryOfficeName": "officeLocation",
    "facsimileTelephoneNumber": "faxNumber",
}

# Graph user properties whose type is not a string: values are coerced so PATCH bodies are valid.
BOOLEAN_TARGETS = frozenset({"accountEnabled", "showInAddressList"})
# Where desired_update carries None mappings' defaults: written only where the target attribute is empty.
FILL_KEY = "@fill"
# Target attributes Entra's cross-tenant synchronization refuses, with its reason (app-provisioning/known-issues.md).
FORBIDDEN_TARGETS: dict[str, str] = {
    "proxyaddresses": "Entra: \"ProxyAddresses is a read-only property in Microsoft Graph. It can be included as a "
                      "source attribute in your mappings, but cannot be set as a target attribute\" (known-issues.md)",
    "othermails": "Entra: \"otherMails should not be included in your cross-tenant synchronization attribute "
                  "mappings as a target attribute\"; the target tenant computes it (known-issues.md)",
}
LIST_TARGETS = frozenset({"businessPhones", "otherMails", "proxyAddresses", "imAddresses"})


_EXTENSION_ATTRIBUTE = re.compile(r"extensionAttribute(?:[1-9]|1[0-5])")
ON_PREMISES_EXTENSIONS = "onPremisesExtensionAttributes"


def source_select(attributes: Iterable[str]) -> list[str]:
    """Graph `$select` names for source attributes: extensionAttribute1-15 live inside
    onPremisesExtensionAttributes, which is what Graph lets you select (it refuses the bare names)."""
    out = {ON_PREMISES_EXTENSIONS if _EXTENSION_ATTRIBUTE.fullmatch(a) else a for a in attributes}
    return sorted(out)


def flatten_extension_attributes(user: dict[str, Any]) -> dict[str, Any]:
    """Copy onPremisesExtensionAttributes.extensionAttributeN to the top level (for scoping and mappings)."""
    nested = user.get(ON_PREMISES_EXTENSIONS)
    if isinstance(nested, MappingABC):
        for k, v in nested.items():
            if _EXTENSION_ATTRIBUTE.fullmatch(k) and user.get(k) is None:
                user[k] = v
    return user


def graph_name(name: str) -> str:
    """Graph property name for an Entra schema attribute name (unchanged if already Graph's)."""
    return ENTRA_TO_GRAPH.get(name, name)


class Mapping(BaseModel):
    """One attribute mapping, as written in the topology config (``sync[i].mappings[j]``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str
    type: MappingType = "Direct"
    source: str | None = None
    value: str | bool | int | None = None
    expression: str | None = None
    default: str | None = None
    apply: ApplyMode = "Always"
    clear_when_null: bool = False

    @field_validator("target", "source")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip()
        if v.startswith("[") and v.endswith("]"):
            v = v[1:-1].strip()
        if not v:
            raise ValueError("attribute name is empty — write the Graph property name, e.g. displayName")
        return v

    @field_validator("expression")
    @classmethod
    def _expression_compiles(cls, v: str | None) -> str | None:
        # ExpressionError is a ValueError: pydantic keeps it (with line/column) in the error context.
        if v is not None:
            compile(v, aliases=ENTRA_TO_GRAPH)
        return v

    @field_validator("target")
    @classmethod
    def _target_allowed(cls, v: str) -> str:
        reason = FORBIDDEN_TARGETS.get(graph_name(v).lower())
        if reason:
            raise ValueError(f"{v} cannot be a target attribute. {reason}. Remove this mapping")
        return v

    @model_validator(mode="after")
    def _fields_match_type(self) -> Mapping:
        t = self.type
        need = {"Direct": "source", "Constant": "value", "Expression": "expression"}.get(t)
        if need and getattr(self, need) is None:
            raise ValueError(f"a {t} mapping for {self.target!r} needs '{need}'")
        extra = [f for f in ("source", "value", "expression")
                 if f != need and getattr(self, f) is not None]
        if extra:
            raise ValueError(
                f"a {t} mapping for {self.target!r} does not use {', '.join(extra)} — remove it or change 'type'"
            )
        return self


@dataclass(frozen=True, slots=True)
class _Step:
    target: str
    kind: str
    on_create_only: bool
    source: str | None
    constant: Any
    compiled: CompiledExpression | None
    default: Any
    clear_when_null: bool = False


class MappingError(ExpressionEvaluationError):
    """An expression mapping failed for one user; names the user, target attribute and expression."""

    def __init__(self, message: str, *, target: str, user_id: str | None, line=None, column=None) -> None:
        super().__init__(message, line=line, column=column)
        self.target = target
        self.user_id = user_id


def _coerce(target: str, value: Any) -> Any:
    if value is None:
        return None
    if target in BOOLEAN_TARGETS and isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
    if target in LIST_TARGETS and not isinstance(value, list):
        return [value] if value != "" else []
    return value


class CompiledMappings:
    """A config's mappings, compiled once; ``apply`` turns a source user into target attributes."""

    __slots__ = ("mappings", "_steps", "source_attributes", "targets", "redacted_targets")

    def __init__(self, mappings: Iterable[Mapping]) -> None:
        self.mappings: tuple[Mapping, ...] = tuple(mappings)
        steps: list[_Step] = []
        seen: dict[str, int] = {}
        sources: set[str] = set()
        redacted: set[str] = set()
        for i, m in enumerate(self.mappings):
            target = graph_name(m.target)
            if target.lower() in seen:
                raise ValueError(
                    f"mappings[{i}] maps target {m.target!r} again (first at mappings[{seen[target.lower()]}]) — "
                    "keep one mapping per target attribute"
                )
            seen[target.lower()] = i
            compiled = None
            source = None
            if m.type == "Direct":
                source = graph_name(m.source or "")
                sources.add(source)
            elif m.type == "Expression":
                compiled = compile(m.expression or "", aliases=ENTRA_TO_GRAPH)
                sources |= compiled.attributes
                if compiled.redacted:
                    redacted.add(target)
            steps.append(_Step(target, m.type, m.apply == "OnCreateOnly", source, m.value, compiled, m.default,
                               m.clear_when_null))
        self._steps = tuple(steps)
        self.source_attributes: frozenset[str] = frozenset(sources)
        self.targets: tuple[str, ...] = tuple(s.target for s in steps)
        self.redacted_targets: frozenset[str] = frozenset(redacted)

    def apply(self, user: MappingABC[str, Any], is_create: bool) -> dict[str, Any]:
        """Target attributes for ``user``.

        On update, OnCreateOnly mappings and defaults are skipped, and None mappings' defaults go under
        FILL_KEY.  A value of IGNORE_FLOW (IgnoreFlowIfNullOrEmpty) leaves the attribute out.  A null
        (or empty) value is left out too, as Entra skips null attributes, unless the mapping says
        ``clear_when_null`` (then None: the planner clears the target attribute).
        """
        out: dict[str, Any] = {}
        fill: dict[str, Any] = {}
        for step in self._steps:
            if step.on_create_only and not is_create:
                continue
            if step.kind == "None":  # the target is left alone; its default fills an empty attribute
                if step.default is not None:
                    (out if is_create else fill)[step.target] = _coerce(step.target, step.default)
                continue
            value = _evaluate(step, user)
            if value is not IGNORE_FLOW:
                _put(out, step, value, is_create)
        if fill:
            out[FILL_KEY] = fill
        return out

    def apply_both(self, user: MappingABC[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(apply(user, True), apply(user, False))``, each expression evaluated once instead of twice.

        The desired-state step needs both for every user; the two passes differ only in OnCreateOnly
        steps, defaults and the None mapping's fill, never in a value an expression computes.
        """
        create: dict[str, Any] = {}
        update: dict[str, Any] = {}
        fill: dict[str, Any] = {}
        for step in self._steps:
            if step.kind == "None":  # the target is left alone; its default fills an empty attribute
                if step.default is not None:
                    create[step.target] = _coerce(step.target, step.default)
                    if not step.on_create_only:
                        fill[step.target] = _coerce(step.target, step.default)
                continue
            value = _evaluate(step, user)
            if value is IGNORE_FLOW:
                continue
            _put(create, step, value, True)
            if not step.on_create_only:
                _put(update, step, value, False)
        if fill:
            update[FILL_KEY] = fill
        return create, update

    def __reduce__(self):
        return (CompiledMappings, (self.mappings,))

    def __repr__(self) -> str:
        return f"CompiledMappings({len(self._steps)} mappings -> {', '.join(self.targets)})"


def _put(out: dict[str, Any], step: _Step, value: Any, is_create: bool) -> None:
    """One step's value into `out`, as `CompiledMappings.apply` places it."""
    if (value is None or value == "") and is_create and step.default is not None:
        value = step.default
    value = _coerce(step.target, value)
    if value is None or value == "" or value == []:
        if step.clear_when_null:
            out[step.target] = None
        return
    out[step.target] = value


def _evaluate(step: _Step, user: MappingABC[str, Any]) -> Any:
    """A Direct, Expression or Constant step's value for `user` (IGNORE_FLOW: leave the attribute out)."""
    if step.kind == "Direct":
        return user.get(step.source)  # type: ignore[arg-type]
    if step.kind == "Constant":
        return step.constant
    try:
        return step.compiled.evaluate(user)  # type: ignore[union-attr]
    except ExpressionEvaluationError as exc:
        uid = user.get("id")
        raise MappingError(
            f"mapping for target {step.target!r} failed for user {uid or '(no id)'}: {exc.message} "
            f"[expression: {step.compiled.source}]",  # type: ignore[union-attr]
            target=step.target, user_id=uid, line=exc.line, column=exc.column,
        ) from None


def compile_mappings(mappings: Iterable[Mapping | MappingABC[str, Any]]) -> CompiledMappings:
    """Validate (dicts are accepted) and compile a list of mappings."""
    return CompiledMappings(m if isinstance(m, Mapping) else Mapping.model_validate(m) for m in mappings)


def merge_mappings(defaults: Iterable[Mapping], overrides: Iterable[Mapping]) -> list[Mapping]:
    """Defaults with overrides applied: same target (case-insensitive) replaces the default; an
    override of type None without a default removes the target; new targets are appended."""
    merged: dict[str, Mapping] = {graph_name(m.target).lower(): m for m in defaults}
    for m in overrides:
        key = graph_name(m.target).lower()
        if m.type == "None" and m.default is None:
            merged.pop(key, None)
        else:
            merged[key] = m
    return list(merged.values())


def _direct(name: str) -> Mapping:
    return Mapping(target=name, type="Direct", source=name)


# Entra's default cross-tenant synchronization mappings ("Provision Microsoft Entra ID Users").
# Source: the Attribute Mapping screenshot of cross-tenant-synchronization-configure.md (entra-docs)
# as transcribed from Microsoft's PDF export; the first rows read: AltSecIdFromNetId(netId) ->
# alternativeSecurityIds (matching, internal), isSoftDeleted, accountEnabled, streetAddress, city,
# state, postalCode, country, department, employeeId, displayName, givenName; the last rows:
# preferredLanguage, surname, telephoneNumber, userPrincipalName, true -> showInAddressList,
# mail, Member -> userType.  The middle rows are not legible in the source we had; jobTitle,
# mobile, physicalDeliveryOfficeName and companyName are included from Entra's user schema (marked).
# Left out on purpose: alternativeSecurityIds/isSoftDeleted (internal to Entra; we link through
# directory extensions, see DESIGN.md), userPrincipalName (the B2B UPN is assigned by the
# invitation; Graph rejects a UPN in a domain the target has not verified), telephoneNumber
# (Graph exposes it as the businessPhones list; mapped as businessPhones).
ENTRA_DEFAULT_MAPPINGS: tuple[Mapping, ...] = (
    _direct("accountEnabled"),
    _direct("streetAddress"),
    _direct("city"),
    _direct("state"),
    _direct("postalCode"),
    _direct("country"),
    _direct("department"),
    _direct("employeeId"),
    _direct("displayName"),
    _direct("givenName"),
    _direct("jobTitle"),  # unconfirmed row (see above)
    _direct("companyName"),  # unconfirmed row
    _direct("mobilePhone"),  # Entra: mobile; unconfirmed row
    _direct("officeLocation"),  # Entra: physicalDeliveryOfficeName; unconfirmed row
    _direct("preferredLanguage"),
    _direct("surname"),
    _direct("businessPhones"),  # Entra: telephoneNumber
    Mapping(target="showInAddressList", type="Constant", value="True"),
    _direct("mail"),
    Mapping(target="userType", type="Constant", value="Member", apply="OnCreateOnly"),  # on create only, as Entra
)

__all__ = [
    "BOOLEAN_TARGETS",
    "ENTRA_DEFAULT_MAPPINGS",
    "ENTRA_TO_GRAPH",
    "FILL_KEY",
    "FORBIDDEN_TARGETS",
    "CompiledMappings",
    "Mapping",
    "MappingError",
    "compile_mappings",
    "flatten_extension_attributes",
    "graph_name",
    "merge_mappings",
    "source_select",
]
