"""Read YAML and remember where every key and list item sits, so errors can cite lines.

PyYAML's composer keeps node marks; we construct the data with SafeLoader and walk the node
tree alongside it. Duplicate keys (which PyYAML silently collapses) are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, ConfigIssue, PathT


@dataclass
class YamlSource:
    """Parsed YAML data plus 1-based (line, column) of every path in it."""

    file: str
    data: Any
    marks: dict[PathT, tuple[int, int]] = field(default_factory=dict)
    duplicates: list[ConfigIssue] = field(default_factory=list)
    scalars: dict[PathT, tuple[int, int, str | None, str]] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def position_in_scalar(self, path: PathT, line: int, column: int) -> tuple[int, int] | None:
        """File (line, column) of position line:column inside the string at `path`, when it maps 1:1.

        Literal blocks (`|`) keep their lines; single-line plain or quoted scalars keep their
        columns when they contain no escapes. Folded or escaped text returns None.
        """
        found = self.scalars.get(tuple(path))
        if found is None or line < 1 or column < 1:
            return None
        start_line, start_col, style, value = found
        if style == "|":
            file_line = start_line + line
            if file_line > len(self.lines):
                return None
            first = self.lines[start_line]  # the block's first content line sets its indentation
            return file_line, len(first) - len(first.lstrip(" ")) + column
        if line != 1 or "\n" in value:
            return None
        offset = 1 if style in ("'", '"') else 0
        text = self.lines[start_line - 1] if start_line <= len(self.lines) else ""
        begin = start_col - 1 + offset
        if text[begin : begin + len(value)] != value:
            return None
        return start_line, begin + column

    def mark(self, path: PathT) -> tuple[int | None, int | None]:
        """Position of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.marks:
                return self.marks[path]
            path = path[:-1]
        return self.marks.get((), (None, None))


def _walk(node: yaml.Node, path: PathT, src: YamlSource) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                src.duplicates.append(
                    ConfigIssue(
                        child,
                        f"key '{key}' appears twice (first on line {seen[key]}); YAML keeps only the "
                        "last one, so delete or merge the duplicate.",
                        line,
                        key_node.start_mark.column + 1,
                    )
                )
            seen[key] = line
            src.marks.setdefault(child, (line, key_node.start_mark.column + 1))
            _walk(value_node, child, src)
    elif isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
        src.scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, node.style, node.value)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            src.marks.setdefault(child, (item.start_mark.line + 1, item.start_mark.column + 1))
            _walk(item, child, src)


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse YAML text; a syntax error becomes a ConfigError with the line and column."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(
            file,
            [
                ConfigIssue(
                    (),
                    f"YAML syntax error: {problem}. Check the indentation and quoting on this line "
                    "and the one before it.",
                    mark.line + 1 if mark else None,
                    mark.column + 1 if mark else None,
                )
            ],
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, [ConfigIssue((), f"YAML error: {exc}. Fix the file's syntax.")]) from None
    finally:
        loader.dispose()
    src = YamlSource(file=file, data=data, lines=text.splitlines())
    if node is not None:
        src.marks[()] = (node.start_mark.line + 1, node.start_mark.column + 1)
        _walk(node, (), src)
    return src


def read_yaml(path: Path) -> YamlSource:
    """Read and parse a YAML file; unreadable files raise ConfigError naming the path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(path), [ConfigIssue((), "file not found. Pass an existing file with --config or XTS_CONFIG.")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            str(path), [ConfigIssue((), f"cannot read the file ({type(exc).__name__}); check its permissions and that it is UTF-8.")]
        ) from None
    return parse_yaml(text, str(path))
