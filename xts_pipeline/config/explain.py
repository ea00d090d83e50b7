"""Turn pydantic's validation errors into sentences that tell a person what to change.

Pydantic's own messages say what is wrong with the *input*; ours add which keys are allowed,
the closest known key to a typo, and the field's description. Input values are never echoed,
so a mistyped secret cannot leak through an error message.
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import ConfigIssue, PathT, did_you_mean

HIDDEN_FIELDS = frozenset({"name", "sandbox_secret"})


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def type_at(root: Any, path: Sequence[str | int]) -> Any:
    """The declared type at `path` inside `root` (a model class), or None when unknown."""
    tp = root
    for part in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(part) if isinstance(part, str) else None
            if field is None:
                return None
            tp = field.annotation
            continue
        origin = get_origin(tp)
        args = get_args(tp)
        if origin in (list, tuple, set, frozenset, Sequence) and args:
            tp = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            tp = args[1]
        else:
            return None
    return _unwrap(tp)


def allowed_keys(model: Any) -> list[str]:
    """The keys a model accepts in YAML."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [k for k in model.model_fields if k not in HIDDEN_FIELDS]
    return []


def _description(root: Any, loc: PathT) -> str | None:
    parent = type_at(root, loc[:-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel) and isinstance(loc[-1], str):
        field = parent.model_fields.get(loc[-1])
        return field.description if field else None
    return None


def explain(err: Mapping[str, Any], root: Any) -> str:
    """One actionable sentence for one pydantic error dict (as from `errors(include_input=False)`)."""
    loc: PathT = tuple(err["loc"])
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    last = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        allowed = allowed_keys(type_at(root, loc[:-1]))
        return (f"unknown key '{last}'.{did_you_mean(str(last), allowed)} "
                f"Allowed keys here: {', '.join(allowed) or 'none'}.")
    if kind == "missing":
        desc = _description(root, loc) if loc else None
        return f"required key '{last}' is missing; add it" + (f" ({desc})." if desc else ".")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        allowed = allowed_keys(type_at(root, loc))
        if allowed:
            return f"must be a mapping with keys from: {', '.join(allowed)}."
        return "must be a mapping (key: value pairs)."
    if kind == "list_type":
        return "must be a list (YAML `- item` lines or `[a, b]`)."
    if kind == "value_error":  # our own validators already say what to fix
        return f"{msg}."
    msg = msg.replace("Input should be", "must be")
    desc = _description(root, loc) if loc else None
    suffix = f" Expected: {desc}." if desc and desc not in msg else ""
    return f"{msg}.{suffix}"


def issues_from(exc: ValidationError, root: Any, prefix: PathT = ()) -> list[ConfigIssue]:
    """All errors of one ValidationError as ConfigIssues, paths prefixed with `prefix`."""
    return [
        ConfigIssue((*prefix, *err["loc"]), explain(err, root))
        for err in exc.errors(include_input=False, include_url=False)
    ]
