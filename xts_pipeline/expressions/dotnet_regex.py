"""Run Entra's .NET regular expressions and substitutions with Python's ``re``.

Entra's Replace takes .NET regex syntax; the documented examples use named groups written
``(?<name>...)`` and substitutions written ``${name}``.  Python spells these ``(?P<name>...)``
and ``\\g<name>``, so we translate the pattern once and expand substitutions ourselves.
Balancing groups ``(?<a-b>...)`` have no Python equivalent and are rejected with a clear error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .errors import FunctionError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def translate_pattern(pattern: str) -> str:
    """Rewrite .NET-only syntax into Python ``re`` syntax (outside character classes)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if not in_class and pattern.startswith(("\\k<", "\\k'"), i):
                close = ">" if pattern[i + 2] == "<" else "'"
                end = pattern.find(close, i + 3)
                if end > 0 and re.fullmatch(_NAME, pattern[i + 3:end]):
                    out.append(f"(?P={pattern[i + 3:end]})")
                    i = end + 1
                    continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            # a ']' right after '[' or '[^' is a literal in both dialects
            j = i + 1
            if j < n and pattern[j] == "^":
                out.append("^")
                j += 1
            if j < n and pattern[j] == "]":
                out.append("]")
                j += 1
            i = j
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            end = pattern.find(">", i + 3)
            name = pattern[i + 3:end] if end > 0 else ""
            if "-" in name:
                raise FunctionError(f"regex balancing group (?<{name}>...) is not supported — use a plain named group")
            out.append(f"(?P<{name}>")
            i = end + 1
            continue
        if pattern.startswith("(?'", i):
            end = pattern.find("'", i + 3)
            name = pattern[i + 3:end] if end > 0 else ""
            out.append(f"(?P<{name}>")
            i = end + 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a .NET regex pattern; errors name the problem and point at the .NET syntax doc."""
    try:
        return re.compile(translate_pattern(pattern))
    except re.error as exc:
        raise FunctionError(f"invalid regex pattern ({exc.msg}) — check it against .NET regex syntax") from None


_SUBST = re.compile(r"\$(?:\$|&|`|'|\+|_|\{(" + _NAME + r"|\d+)\}|(\d+))")


def substitution(template: str, pattern: re.Pattern[str]) -> Callable[[re.Match[str]], str]:
    """Build a ``re.sub`` callback that expands .NET substitutions (``$1``, ``${name}``, ``$$``...)."""
    parts: list[object] = []  # str literal, ("g", group) reference or ("s", "$&") special
    pos = 0
    for m in _SUBST.finditer(template):
        parts.append(template[pos:m.start()])
        ref_text = m.group(0)
        ref = m.group(1) or m.group(2)
        if ref_text == "$$":
            parts.append("$")
        elif ref_text in ("$&", "$`", "$'", "$+", "$_"):
            parts.append(("s", ref_text))
        elif ref is not None:
            key: int | str = int(ref) if ref.isdigit() else ref
            exists = (isinstance(key, int) and key <= pattern.groups) or key in pattern.groupindex
            parts.append(("g", key) if exists else ref_text)  # .NET keeps unknown references as literal text
        pos = m.end()
    parts.append(template[pos:])
    if all(isinstance(p, str) for p in parts):
        literal = "".join(parts)  # type: ignore[arg-type]
        return lambda _m: literal

    def expand(m: re.Match[str]) -> str:
        out: list[str] = []
        for p in parts:
            if isinstance(p, str):
                out.append(p)
                continue
            tag, kind = p  # type: ignore[misc]
            if tag == "g":
                out.append(m.group(kind) or "")
            else:
                if kind == "$&":
                    out.append(m.group(0))
                elif kind == "$`":
                    out.append(m.string[:m.start()])
                elif kind == "$'":
                    out.append(m.string[m.end():])
                elif kind == "$+":
                    out.append(m.group(pattern.groups) or "" if pattern.groups else m.group(0))
                else:  # $_
                    out.append(m.string)
        return "".join(out)

    return expand
