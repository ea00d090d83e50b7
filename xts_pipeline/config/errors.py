"""ConfigError: every configuration problem, aggregated, each naming file, path and line.

People fix a config file by jumping to a line, so each issue carries the YAML position (1-based)
and, for expressions, the position inside the expression too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

PathT = tuple[str | int, ...]


def format_path(path: Sequence[str | int]) -> str:
    """Render ('sync', 2, 'mappings', 5, 'expression') as `sync[2].mappings[5].expression`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' did you mean X?' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem at one place of a config file."""

    path: PathT
    message: str
    line: int | None = None
    column: int | None = None
    expr_line: int | None = None
    expr_column: int | None = None

    def render(self, file: str) -> str:
        where = file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        expr = ""
        if self.expr_line is not None:
            expr = f" (expression line {self.expr_line}, column {self.expr_column})"
        if not self.path:
            return f"{where}: {self.message}"
        return f"{where}: {format_path(self.path)}{expr}: {self.message}"


class ConfigError(ValueError):
    """The topology file is invalid; the message lists every problem found, one per line."""

    def __init__(self, file: str, issues: Sequence[ConfigIssue]):
        self.file = str(file)
        self.issues = list(issues)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return f"invalid config: {self.issues[0].render(self.file)}"
        lines = [f"invalid config {self.file}: {len(self.issues)} problems"]
        lines += [f"  - {issue.render(self.file)}" for issue in self.issues]
        return "\n".join(lines)
