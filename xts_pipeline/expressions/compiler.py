"""Compile an expression AST into nested Python closures, once, for fast repeated evaluation.

Each AST node becomes a function ``attrs -> value``.  Function calls are specialised by arity so
evaluation is a handful of plain Python calls per node; errors raised by a function are re-raised
as ``ExpressionEvaluationError`` carrying the call's line and column.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache, partial

from . import dotnet_datetime as dt
from .errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    FunctionError,
    UnknownFunctionError,
)
from .functions import FUNCTIONS, FUNCTIONS_BY_LOWER, NOT_SUPPORTED, VB_CONSTANTS
from .parser import Attribute, Call, Compare, Constant, Literal, Missing, Node, parse, walk
from .values import to_number, to_output, to_str

Evaluator = Callable[[Mapping], object]


class CompiledExpression:
    """A parsed and compiled expression.

    ``attributes`` is the set of source attribute names it reads (what to $select, and what the
    guardrails inspect); ``redacted`` is True when it uses Redact (logs must show "[Redact]").
    """

    __slots__ = ("source", "attributes", "redacted", "ignores_flow", "_fn", "_aliases")

    def __init__(self, source: str, fn: Evaluator, attributes: frozenset[str], redacted: bool,
                 ignores_flow: bool, aliases: tuple[tuple[str, str], ...] = ()) -> None:
        self.source = source
        self._aliases = aliases
        self.attributes = attributes
        self.redacted = redacted
        self.ignores_flow = ignores_flow
        self._fn = fn

    def evaluate(self, attrs: Mapping) -> object:
        """Evaluate against one user's attributes: str, bool, number, list, None or IGNORE_FLOW."""
        try:
            return to_output(self._fn(attrs))
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionEvaluationError("expression nests too deeply to evaluate — simplify it",
                                            line=1, column=1) from None

    def __repr__(self) -> str:
        return f"CompiledExpression({self.source!r})"

    def __reduce__(self):
        # Closures do not pickle; recompiling from the source does (dagster, multiprocessing).
        return (_compile_cached, (self.source, self._aliases))


def compile_expression(source: str, aliases: Mapping[str, str] | None = None) -> CompiledExpression:
    """Parse and compile ``source``.  ``aliases`` renames attributes (Entra schema -> Graph names)."""
    key = tuple(sorted(aliases.items())) if aliases else ()
    return _compile_cached(source, key)


@lru_cache(maxsize=4096)
def _compile_cached(source: str, alias_items: tuple[tuple[str, str], ...]) -> CompiledExpression:
    root = parse(source)
    aliases = dict(alias_items)
    _check_ignore_flow_placement(root)
    fn = _compile(root, aliases)
    names = frozenset(aliases.get(n.name, n.name) for n in walk(root) if isinstance(n, Attribute))
    calls = [n for n in walk(root) if isinstance(n, Call)]
    redacted = any(FUNCTIONS_BY_LOWER[c.name.lower()].name == "Redact" for c in calls)
    ignores = any(FUNCTIONS_BY_LOWER[c.name.lower()].name == "IgnoreFlowIfNullOrEmpty" for c in calls)
    return CompiledExpression(source, fn, names, redacted, ignores, alias_items)


def _canonical(node: Node) -> str | None:
    if isinstance(node, Call):
        spec = FUNCTIONS_BY_LOWER.get(node.name.lower())
        return spec.name if spec else None
    return None


def _check_ignore_flow_placement(root: Node) -> None:
    """IgnoreFlowIfNullOrEmpty drops the whole attribute, so it must wrap the whole expression."""
    allowed: set[int] = {id(root)}
    if _canonical(root) == "Redact" and isinstance(root, Call) and root.args:
        allowed.add(id(root.args[0]))
    for node in walk(root):
        if _canonical(node) == "IgnoreFlowIfNullOrEmpty" and id(node) not in allowed:
            raise ExpressionSyntaxError(
                f"IgnoreFlowIfNullOrEmpty at {node.line}:{node.column} must be the outermost function — it drops "
                "the whole attribute; move it to wrap the entire expression",
                line=node.line, column=node.column,
            )


def _const(value: object) -> Evaluator:
    return lambda _a: value


def _compile(node: Node, aliases: Mapping[str, str]) -> Evaluator:
    if isinstance(node, Literal):
        return _const(node.value)
    if isinstance(node, Attribute):
        return operator.methodcaller("get", aliases.get(node.name, node.name))
    if isinstance(node, Missing):
        return _const(None)
    if isinstance(node, Constant):
        if node.name in VB_CONSTANTS:
            return _const(VB_CONSTANTS[node.name] if node.name in ("True", "False") else node.name)
        raise ExpressionSyntaxError(
            f"unknown name {node.name!r} at {node.line}:{node.column} — write attributes in square brackets "
            f'([{node.name}]) and text in double quotes ("{node.name}")',
            line=node.line, column=node.column,
        )
    if isinstance(node, Compare):
        return _compile_compare(node, aliases)
    if isinstance(node, Call):
        return _compile_call(node, aliases)
    raise ExpressionSyntaxError(f"unsupported construct at {node.line}:{node.column}",  # pragma: no cover
                                line=node.line, column=node.column)


def _unknown_function(node: Call) -> ExpressionSyntaxError:
    where = f"{node.line}:{node.column}"
    reason = NOT_SUPPORTED.get(node.name[:1].lower() + node.name[1:])
    if reason:
        return UnknownFunctionError(f"function {node.name!r} at {where} is not supported: {reason}",
                                    line=node.line, column=node.column)
    close = difflib.get_close_matches(node.name.lower(), list(FUNCTIONS_BY_LOWER), n=1, cutoff=0.6)
    if close:
        hint = f"did you mean {FUNCTIONS_BY_LOWER[close[0]].name!r}?"
    else:
        hint = "known functions: " + ", ".join(sorted(FUNCTIONS))
    return UnknownFunctionError(f"unknown function {node.name!r} at {where} — {hint}", line=node.line,
                                column=node.column)


def _arity_error(node: Call, spec, n: int) -> str | None:
    lo, hi = spec.min_args, spec.max_args
    if lo <= n and (hi is None or n <= hi):
        return spec.arity_rule(n) if spec.arity_rule else None
    if hi is None:
        want = f"at least {lo}"
    elif lo == hi:
        want = f"exactly {lo}"
    else:
        want = f"{lo} to {hi}"
    return f"{spec.name} takes {want} argument{'s' if (hi or lo) != 1 else ''}, got {n} — write {spec.signature}"


def _compile_call(node: Call, aliases: Mapping[str, str]) -> Evaluator:
    spec = FUNCTIONS_BY_LOWER.get(node.name.lower())
    if spec is None:
        raise _unknown_function(node)
    where = f"{node.line}:{node.column}"
    problem = _arity_error(node, spec, len(node.args))
    if problem:
        raise ExpressionSyntaxError(f"{problem} (at {where})", line=node.line, column=node.column)
    lazy, impl = spec.lazy, spec.impl
    if spec.builder is not None:
        try:
            lazy, impl = spec.builder(node.args)
        except FunctionError as exc:
            raise ExpressionSyntaxError(f"{spec.name} at {where}: {exc}", line=node.line, column=node.column) from None
    args = [_compile(a, aliases) for a in node.args]
    if spec.name == "Replace":  # Replace's implementation always takes the 7 documented positions
        args += [_const(None)] * (7 - len(args))
    return _wrap(spec.name, node.line, node.column, impl, args, lazy)


def _wrap(name: str, line: int, column: int, impl, args: list[Evaluator], lazy: bool) -> Evaluator:
    def fail(exc: BaseException) -> ExpressionEvaluationError:
        if isinstance(exc, FunctionError):
            return ExpressionEvaluationError(f"{name} at {line}:{column}: {exc}", line=line, column=column)
        if isinstance(exc, RecursionError):
            return ExpressionEvaluationError(f"{name} at {line}:{column}: expression nests too deeply",
                                             line=line, column=column)
        return ExpressionEvaluationError(
            f"{name} at {line}:{column} cannot handle this value ({type(exc).__name__}) — check the types of its "
            "arguments", line=line, column=column)

    if lazy:
        thunks = tuple(args)

        def call_lazy(a):
            try:
                return impl(a, *thunks)
            except ExpressionError:
                raise
            except Exception as exc:
                raise fail(exc) from None
        return call_lazy

    n = len(args)
    if n == 0:
        def call0(a):
            try:
                return impl()
            except Exception as exc:
                raise fail(exc) from None
        return call0
    if n == 1:
        (f0,) = args

        def call1(a):
            try:
                return impl(f0(a))
            except ExpressionError:
                raise
            except Exception as exc:
                raise fail(exc) from None
        return call1
    if n == 2:
        f0, f1 = args

        def call2(a):
            try:
                return impl(f0(a), f1(a))
            except ExpressionError:
                raise
            except Exception as exc:
                raise fail(exc) from None
        return call2
    if n == 3:
        f0, f1, f2 = args

        def call3(a):
            try:
                return impl(f0(a), f1(a), f2(a))
            except ExpressionError:
                raise
            except Exception as exc:
                raise fail(exc) from None
        return call3
    fs = tuple(args)

    def calln(a):
        try:
            return impl(*[f(a) for f in fs])
        except ExpressionError:
            raise
        except Exception as exc:
            raise fail(exc) from None
    return calln


def _ordered(cmp: Callable[[object, object], bool], left: object, right: object) -> bool:
    if isinstance(left, datetime) or isinstance(right, datetime):
        lv: object = dt.as_datetime(left, "left side")
        rv: object = dt.as_datetime(right, "right side")
    else:
        ln, rn = to_number(left), to_number(right)
        if ln is not None and rn is not None:
            lv, rv = ln, rn
        else:
            lv, rv = to_str(left), to_str(right)
    return cmp(lv, rv)


_ORDERINGS: dict[str, Callable[[object, object], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


def _equal(left: object, right: object) -> bool:
    if left is None or right is None:
        return to_str(left) == to_str(right)
    if isinstance(left, datetime) or isinstance(right, datetime):
        return dt.as_datetime(left, "left side") == dt.as_datetime(right, "right side")
    if isinstance(left, int | float) and not isinstance(left, bool) or \
            isinstance(right, int | float) and not isinstance(right, bool):
        ln, rn = to_number(left), to_number(right)
        if ln is not None and rn is not None:
            return ln == rn
    return to_str(left) == to_str(right)  # case-sensitive, like Switch


def _compile_compare(node: Compare, aliases: Mapping[str, str]) -> Evaluator:
    op = node.op
    left, right = _compile(node.left, aliases), _compile(node.right, aliases)
    impl: Callable[[object, object], bool]
    if op == "=":
        impl = _equal
    elif op == "<>":
        def impl(a, b):
            return not _equal(a, b)
    else:
        impl = partial(_ordered, _ORDERINGS[op])
    return _wrap(f"comparison {op!r}", node.line, node.column, impl, [left, right], False)
