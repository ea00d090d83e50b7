"""SQL as package data: each query is a `.sql` file under `<package>/sql/`, loaded by name.

Why: a query in a file reads (and diffs) as SQL, ships with the wheel like the `.lark` grammars do, and
is never assembled from Python strings. Values are bound with `?` or `$name`; an identifier that must vary
(a table or column name) is checked against the schema's whitelist by the caller (see store.count_by); a
fragment of SQL a query needs from code (not a value) goes in a named slot its header lists (see fill).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")


class QueryNotFound(LookupError):
    """No `.sql` file of that name ships with the package (a typo, or package data left out of the wheel)."""


@cache
def load(name: str, package: str = "xts_pipeline") -> str:
    """The text of `<package>/sql/<name>.sql` (name like `lease/holder`), read once per process."""
    if not _NAME.match(name):
        raise QueryNotFound(f"query name {name!r}: use lower-case words and '/' (e.g. 'lease/holder')")
    path = resources.files(package).joinpath("sql", *f"{name}.sql".split("/"))
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise QueryNotFound(f"no query {name!r} in {package}/sql/ (is *.sql in pyproject's package-data?)") from exc


def statements(name: str, package: str = "xts_pipeline") -> tuple[str, ...]:
    """The statements of a multi-statement file (each ends with `;` at the end of a line), comments kept."""
    chunks = re.split(r";[ \t]*$", load(name, package), flags=re.MULTILINE)
    return tuple(c.strip() for c in chunks
                 if any(line.strip() and not line.strip().startswith("--") for line in c.splitlines()))


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def fill(text: str, **fragments: str) -> str:
    """A loaded query with its named slots (`{{name}}` in the SQL; its header comment lists them as `slot name`)
    replaced by SQL fragments.

    Why: a few queries need a piece of SQL that is code, not a value (a predicate another module defines, an
    expression over a given alias). The caller passes its own constants only, never user data; every slot
    the text has must be given and nothing else, so a typo or a stale slot fails at once.
    """
    slots = set(_SLOT.findall(text))
    if slots != set(fragments):
        raise ValueError(f"query slots {sorted(slots)} but fragments given for {sorted(fragments)}")
    return _SLOT.sub(lambda m: fragments[m.group(1)], text)
