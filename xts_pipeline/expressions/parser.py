"""Parse expression text into a small AST with lark (LALR, grammar in ``grammar.lark``).

The AST is plain frozen dataclasses so the compiler (``compiler.py``) and tools such as the
config validator can walk it without knowing lark.  All lark errors become
``ExpressionSyntaxError`` with a 1-based line/column and a hint about what to write instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import ExpressionSyntaxError

MAX_LENGTH = 10_000  # Entra's documented limit for one expression
MAX_DEPTH = 200  # nesting guard: keeps compile/evaluate far from Python's recursion limit


@dataclass(frozen=True, slots=True)
class Node:
    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: object  # str | int | float


@dataclass(frozen=True, slots=True)
class Attribute(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Constant(Node):
    name: str  # a bare name such as vbTextCompare; resolved by the compiler


@dataclass(frozen=True, slots=True)
class Missing(Node):
    """An argument position left empty: ``Replace([a], , "x", , "", , )``."""


@dataclass(frozen=True, slots=True)
class Compare(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Node, ...]


@cache
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", maybe_placeholders=True, propagate_positions=False)


_FRIENDLY = {
    "RPAR": "')'",
    "LPAR": "'('",
    "COMMA": "','",
    "COMP_OP": "a comparison (= <> > >= < <=)",
    "NAME": "a function name",
    "ATTRIBUTE": "an [attribute]",
    "STRING": 'a "string"',
    "NUMBER": "a number",
    "HEX": "a &H hex number",
    "$END": "the end of the expression",
}


def unescape(body: str) -> str:
    """Undo Entra's string escapes: ``\\"`` -> ``"`` and ``\\\\`` -> ``\\``.

    A backslash before any other character is kept as written, so regex patterns such as
    ``"\\d"`` keep working whether or not the author doubled the backslash.
    """
    if "\\" not in body:
        return body
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n and body[i + 1] in '"\\':
            out.append(body[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _syntax_error(text: str, err: UnexpectedInput) -> ExpressionSyntaxError:
    if isinstance(err, UnexpectedCharacters):
        line, col = err.line, err.column
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        if ch == '"':
            msg = f'unterminated string at {line}:{col} — close it with a double quote; write \\" for a quote inside'
        elif ch == "[":
            msg = f"unterminated attribute reference at {line}:{col} — close it with ']' (names cannot contain brackets)"
        elif ch == "&":
            msg = f"bad hex number at {line}:{col} — write hex numbers as &HFF"
        else:
            msg = (
                f"unexpected character {ch!r} at {line}:{col} — expected a function call, [attribute], "
                '"string" or number'
            )
        return ExpressionSyntaxError(msg, line=line, column=col)
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        tok = err.token
        expected = sorted({_FRIENDLY.get(e, e) for e in err.expected})
        hint = ", ".join(expected) if expected else "something else"
        msg = f"unexpected {str(tok)!r} at {tok.line}:{tok.column} — expected {hint}"
        if tok.type == "LPAR" and err.expected <= {"COMMA", "RPAR", "COMP_OP", "$END"}:
            msg += "; function names must be letters, digits or _"
        return ExpressionSyntaxError(msg, line=tok.line, column=tok.column)
    line, col = _position(text, len(text))
    msg = f"expression ends too early at {line}:{col} — check for a missing ')' or argument"
    return ExpressionSyntaxError(msg, line=line, column=col)


def parse(text: str) -> Node:
    """Parse ``text`` into an AST; raise ``ExpressionSyntaxError`` on any problem."""
    if not isinstance(text, str):
        raise ExpressionSyntaxError(
            f"an expression must be text, got {type(text).__name__} — quote it in the config", line=1, column=1
        )
    if len(text) > MAX_LENGTH:
        raise ExpressionSyntaxError(
            f"expression is {len(text)} characters; Entra allows at most {MAX_LENGTH} — split the logic "
            "over several mappings",
            line=1,
            column=MAX_LENGTH + 1,
        )
    if not text.strip():
        raise ExpressionSyntaxError("expression is empty — write a function call such as Join(\" \", [givenName], [surname])",
                                    line=1, column=1)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(text, err) from None
    except UnexpectedEOF as err:  # pragma: no cover - lalr reports UnexpectedToken($END)
        raise _syntax_error(text, err) from None
    except LarkError as err:  # pragma: no cover - defensive
        raise ExpressionSyntaxError(f"cannot parse expression: {err}", line=1, column=1) from None
    except RecursionError:
        raise ExpressionSyntaxError(
            f"expression nests too deeply — keep nesting under {MAX_DEPTH} levels", line=1, column=1
        ) from None
    try:
        return _to_ast(tree.children[0], 0)
    except RecursionError:
        raise ExpressionSyntaxError(
            f"expression nests too deeply — keep nesting under {MAX_DEPTH} levels", line=1, column=1
        ) from None


def _to_ast(item: Tree | Token | None, depth: int, where: tuple[int, int] = (1, 1)) -> Node:
    if depth > MAX_DEPTH:
        line, col = where
        raise ExpressionSyntaxError(
            f"expression nests deeper than {MAX_DEPTH} levels at {line}:{col} — simplify it", line=line, column=col
        )
    if item is None:
        return Missing(where[0], where[1])
    kind = item.data
    if kind == "call":
        name_tok, arglist = item.children
        pos = (name_tok.line, name_tok.column)
        raw = arglist.children
        if len(raw) == 1 and raw[0] is None:
            args: tuple[Node, ...] = ()
        else:
            args = tuple(_to_ast(a, depth + 1, pos) for a in raw)
        return Call(name_tok.line, name_tok.column, str(name_tok), args)
    if kind == "compare":
        left, op, right = item.children
        return Compare(op.line, op.column, str(op), _to_ast(left, depth + 1, where), _to_ast(right, depth + 1, where))
    (tok,) = item.children
    line, col = tok.line, tok.column
    text = str(tok)
    if kind == "attribute":
        name = text[1:-1].strip()
        if not name:
            raise ExpressionSyntaxError(f"empty attribute reference [] at {line}:{col} — write [attributeName]",
                                        line=line, column=col)
        return Attribute(line, col, name)
    if kind == "string":
        return Literal(line, col, unescape(text[1:-1]))
    if kind == "number":
        return Literal(line, col, float(text) if "." in text else int(text))
    if kind == "hex":
        return Literal(line, col, int(text[2:], 16))
    if kind == "constant":
        return Constant(line, col, text)
    raise ExpressionSyntaxError(f"unsupported construct at {line}:{col}", line=line, column=col)  # pragma: no cover


def walk(node: Node):
    """Yield ``node`` and every node below it (iteratively; used for attribute collection)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Call):
            stack.extend(reversed(n.args))
        elif isinstance(n, Compare):
            stack.extend((n.right, n.left))
