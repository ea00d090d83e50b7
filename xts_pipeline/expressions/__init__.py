"""Entra ID's attribute-mapping expression language: parse once, evaluate fast.

    from xts_pipeline.expressions import compile, evaluate
    expr = compile('Join(" ", [givenName], [surname])')
    expr.evaluate({"givenName": "John", "surname": "Doe"})   # "John Doe"
    expr.attributes                                          # {"givenName", "surname"}

Semantics follow Microsoft's function reference (functions-for-customizing-application-data.md);
see ``functions.py`` for the per-function notes, including the kept IIF-on-null limitation.
``IGNORE_FLOW`` is what IgnoreFlowIfNullOrEmpty returns for an empty value: the mapping layer
drops that target attribute.
"""

from __future__ import annotations

from collections.abc import Mapping

from .compiler import CompiledExpression, compile_expression
from .errors import ExpressionError, ExpressionEvaluationError, ExpressionSyntaxError, UnknownFunctionError
from .functions import FUNCTIONS, IGNORE_FLOW
from .parser import MAX_LENGTH


def compile(expression: str, *, aliases: Mapping[str, str] | None = None) -> CompiledExpression:  # noqa: A001
    """Parse and compile ``expression`` (cached); raise ExpressionSyntaxError/UnknownFunctionError."""
    return compile_expression(expression, aliases)


def evaluate(expression: str, attributes: Mapping) -> object:
    """Compile (cached) and evaluate ``expression`` against one user's ``attributes``."""
    return compile_expression(expression).evaluate(attributes)


__all__ = [
    "FUNCTIONS",
    "IGNORE_FLOW",
    "MAX_LENGTH",
    "CompiledExpression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "UnknownFunctionError",
    "compile",
    "evaluate",
]
