"""A look-alike skeleton for names: two strings that render alike get the same skeleton.

Follows Unicode TR39's idea (map every character to a prototype, compare the results) but is
tuned for impersonation of *people*: it also ignores case, diacritics, spacing and punctuation.

The confusable data comes from `confusable-homoglyphs`, which ships Unicode's confusables.txt as a
two-way JSON table. We derive a one-way map from every non-ASCII character that has exactly one
ASCII letter/digit look-alike (1,449 characters: Cyrillic а е о р с х у і ѕ, Greek ο α ι ν, ...).
Fullwidth and mathematical letters are already folded by NFKD.

Decisions inside ASCII, after casefolding (documented in docs/guardrails.md):
- TR39 says 'I' and '1' look like 'l'; casefolding turns 'I' into 'i', so i, l and 1 fold together.
- '0' folds to 'o'; 'm' becomes 'rn' (TR39 direction, so 'rn' and 'm' meet).
Every output character is ASCII-lowercase or a letter/digit of a script with no Latin look-alike,
so `skeleton` is idempotent.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# TR39's ASCII-to-ASCII confusables, restated after casefolding (see the module docstring).
_ASCII_FOLDS = {"i": "l", "1": "l", "|": "l", "0": "o", "m": "rn"}


def _fold_ascii(text: str) -> str:
    return "".join(_ASCII_FOLDS.get(ch, ch) for ch in text.casefold())


@lru_cache(maxsize=1)
def _table() -> dict[int, str]:
    """str.translate table: confusable character -> its final ASCII skeleton."""
    from confusable_homoglyphs.utils import load

    data = load("confusables.json")
    table: dict[int, str] = {}
    for key, homoglyphs in data.items():
        char = key.replace("\u200e", "")  # the JSON wraps right-to-left glyphs in LRM marks
        if len(char) != 1 or char.isascii():
            continue
        ascii_forms = {
            form
            for h in homoglyphs
            if (form := h["c"].replace("\u200e", "")).isascii() and form.isalnum()
        }
        if len(ascii_forms) == 1:
            table[ord(char)] = _fold_ascii(ascii_forms.pop())
        # several ASCII look-alikes: none in the shipped data (a test checks); leave the character as it is.
    for ch, folded in _ASCII_FOLDS.items():
        table[ord(ch)] = folded
    # Letters with a stroke do not decompose under NFKD; they read as their base letter.
    for ch, base in {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "l"}.items():
        table.setdefault(ord(ch), _fold_ascii(base))
    return table


def _normalise(text: str) -> str:
    """Unicode's compatibility caseless form (D146): NFKD(casefold(NFKD(casefold(NFD(x)))))."""
    nfkd = unicodedata.normalize
    return nfkd("NFKD", nfkd("NFKD", nfkd("NFD", text).casefold()).casefold())


def skeleton(text: str | None) -> str:
    """The look-alike key of `text`: equal skeletons mean a reader could take one for the other."""
    if not text:
        return ""
    table = _table()
    # Map before casefolding too: Cyrillic 'М' looks like 'M', but its lowercase 'м' looks like nothing.
    mapped = _normalise(unicodedata.normalize("NFD", text).translate(table)).translate(table)  # TR39: NFD, then map
    # Combining marks (diacritics), spaces, punctuation and format characters are not alnum.
    out = "".join(filter(str.isalnum, mapped))
    # A character outside the table can casefold/decompose into one inside it; settle to a fixpoint.
    for _ in range(3):
        again = "".join(filter(str.isalnum, _normalise(out).translate(table)))
        if again == out:
            return out
        out = again
    return out


def describe_lookalikes(text: str) -> list[str]:
    """The characters of `text` that are not plain ASCII, named for a person: "Cyrillic е"."""
    seen: list[str] = []
    for ch in text:
        if ch.isascii() or ch in seen:
            continue
        seen.append(ch)
    out = []
    for ch in seen:
        name = unicodedata.name(ch, "")
        if not ch.isprintable():
            out.append(f"invisible {name.lower() or 'character'} U+{ord(ch):04X}")
        elif unicodedata.category(ch).startswith("M"):
            out.append(f"combining {name.lower().removeprefix('combining ')}")
        elif name and name.split()[0].isalpha() and unicodedata.category(ch).startswith("L"):
            out.append(f"{name.split()[0].title()} {ch}")
        else:
            out.append(f"{name.lower()} {ch}" if name else f"U+{ord(ch):04X}")
    return out
