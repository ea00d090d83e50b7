"""Error types of the expression language.

Every error carries the 1-based ``line`` and ``column`` of the offending construct so a config
loader can point at the exact spot inside an attribute-mapping expression.  Messages say what to
fix; they never include attribute *values* (those may be personal data), only attribute names.
"""

from __future__ import annotations


class ExpressionError(ValueError):
    """Base class: anything wrong with an expression, at compile or evaluation time.

    Subclasses ``ValueError`` so that pydantic validators turn it into a validation error and keep
    the original exception (with ``line``/``column``) in the error context.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __reduce__(self):  # keep line/column when pickled (dagster, multiprocessing)
        return (_rebuild, (type(self), self.message, self.line, self.column))


def _rebuild(cls: type[ExpressionError], message: str, line: int | None, column: int | None):
    return cls(message, line=line, column=column)


class ExpressionSyntaxError(ExpressionError):
    """The text is not a valid expression (bad token, wrong argument count, too long...)."""


class UnknownFunctionError(ExpressionSyntaxError):
    """A function name that Entra's expression language does not have."""


class ExpressionEvaluationError(ExpressionError):
    """A valid expression failed for one particular set of attribute values."""


class FunctionError(Exception):
    """Raised by function implementations; the compiler re-raises it with position and name.

    Internal: callers only ever see ``ExpressionEvaluationError``.
    """
