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

Before mapping, every Default_Ignorable_Code_Point is dropped (zero-width characters, soft hyphen,
variation selectors, Hangul fillers U+115F U+1160 U+3164 U+FFA0, tags), and Latin small capitals and
letter-like symbols with a Latin look-alike fold to their letter (a table derived from Unicode names,
because NFKD leaves `ᴍ` or `ʙ` alone). `words` splits a value into per-word skeletons for word matching.
Bidi controls are not folded away silently: `bidi_controls` finds them so the caller can refuse them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): rendered as nothing, so dropped.
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
# Bidi embedding/override (U+202A-U+202E) and isolate (U+2066-U+2069) controls: they reorder what is shown.
BIDI_CONTROLS = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])
# Where Unicode keeps small capitals and letter-like symbols: IPA, phonetic extensions, letterlike symbols,
# Latin Extended-D/E/F and G (a test scans all of Unicode to prove nothing outside these ranges is missed).
_LETTER_RANGES = ((0x0250, 0x02FF), (0x1D00, 0x1DBF), (0x2100, 0x214F), (0xA720, 0xA7FF), (0xAB30, 0xAB6F),
                  (0x10780, 0x107BF), (0x1DF00, 0x1DFFF))
_SMALL_CAPITAL = re.compile(r"^(?:LATIN (?:CAPITAL )?LETTER|MODIFIER LETTER) SMALL CAPITAL ([A-Z])$")
_LETTERLIKE = re.compile(r"^(?:[A-Z-]+ )*(?:CAPITAL|SMALL) ([A-Z])$")

# TR39's ASCII-to-ASCII confusables, restated after casefolding (see the module docstring).
_ASCII_FOLDS = {"i": "l", "1": "l", "|": "l", "0": "o", "m": "rn"}


def _fold_ascii(text: str) -> str:
    return "".join(_ASCII_FOLDS.get(ch, ch) for ch in text.casefold())


def bidi_controls(text: str | None) -> list[str]:
    """The bidi controls in `text`, named for a message: ['U+202E RIGHT-TO-LEFT OVERRIDE']."""
    if not text or text.isascii():
        return []
    seen = dict.fromkeys(ch for ch in text if ord(ch) in BIDI_CONTROLS)
    return [f"U+{ord(ch):04X} {unicodedata.name(ch, 'bidi control')}" for ch in seen]


@lru_cache(maxsize=1)
def _letter_folds() -> dict[int, str]:
    """Small capitals and letter-like symbols that NFKD leaves alone, to their Latin letter (from names)."""
    out: dict[int, str] = {}
    for cp in (cp for lo, hi in _LETTER_RANGES for cp in range(lo, hi + 1)):
        ch = chr(cp)
        name = unicodedata.name(ch, "")
        if not name:
            continue
        m = _SMALL_CAPITAL.match(name)
        if m is None and 0x2100 <= cp <= 0x214F and unicodedata.normalize("NFKD", ch) == ch:
            m = _LETTERLIKE.match(name)
        if m is not None:
            out[cp] = _fold_ascii(m.group(1).lower())
    return out


@lru_cache(maxsize=1)
def _table() -> dict[int, str | None]:
    """str.translate table: confusable character -> its final ASCII skeleton; ignorables -> nothing."""
    from confusable_homoglyphs.utils import load

    data = load("confusables.json")
    table: dict[int, str | None] = {}
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
    for ch, base in {"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ƀ": "b", "ɨ": "l", "ı": "l"}.items():
        table.setdefault(ord(ch), _fold_ascii(base))
    for cp, letter in _letter_folds().items():
        table.setdefault(cp, letter)
    for lo, hi in DEFAULT_IGNORABLE:
        for cp in range(lo, hi + 1):
            table[cp] = None
    return table


def _normalise(text: str) -> str:
    """Unicode's compatibility caseless form (D146): NFKD(casefold(NFKD(casefold(NFD(x)))))."""
    nfkd = unicodedata.normalize
    return nfkd("NFKD", nfkd("NFKD", nfkd("NFD", text).casefold()).casefold())


# ASCII fast path: lower-case, TR39's ASCII folds, everything but letters and digits dropped.
_ASCII_TABLE: dict[int, str | None] = {
    cp: (_fold_ascii(chr(cp)) if chr(cp).isalnum() or chr(cp) in _ASCII_FOLDS else None) for cp in range(128)}


def skeleton(text: str | None) -> str:
    """The look-alike key of `text`: equal skeletons mean a reader could take one for the other."""
    if not text:
        return ""
    if text.isascii():
        return text.translate(_ASCII_TABLE)
    return _skeleton(text)


@lru_cache(maxsize=65_536)
def _skeleton(text: str) -> str:
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


_DIGITS = "0123456789"


def words(text: str | None) -> list[str]:
    """Per-word skeletons of `text`, in order: words are split at anything that is not a letter or digit
    once ignorables are dropped and the text is normalised ('Bowen, Megan (CEO)' -> bowen, rnegan, ceo).

    Digits at the end of a word are not part of its key ('bowen2' -> bowen): a number appended to a
    name does not make it another person. A word of digits only stays as it is.
    """
    if not text:
        return []
    if text.isascii():
        return [(w.rstrip(_DIGITS) or w).translate(_ASCII_TABLE) for w in text.translate(_ASCII_SPLIT).split()]
    decomposed = unicodedata.normalize("NFKD", text.translate(_ignorables()))
    # Diacritics and overlays (combining marks) would split a word: drop them, the skeleton ignores them too.
    cleaned = "".join(ch for ch in decomposed if not unicodedata.combining(ch) and unicodedata.category(ch) != "Me")
    out: list[str] = []
    for raw in re.split(r"[^\w]+|_", cleaned):
        if raw and (key := skeleton(raw.rstrip(_DIGITS) or raw)):
            out.append(key)
    return out


# ASCII word split: letters and digits kept, everything else a separator.
_ASCII_SPLIT: dict[int, str] = {cp: (chr(cp) if chr(cp).isalnum() else " ") for cp in range(128)}


@lru_cache(maxsize=1)
def _ignorables() -> dict[int, None]:
    return {cp: None for lo, hi in DEFAULT_IGNORABLE for cp in range(lo, hi + 1)}


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



# Bulk forms of `skeleton` and `words` for many values at once (the impersonation guardrail's hot loop):
# ASCII values are joined with newlines and folded in a few C-level passes, so a value costs a share of
# a handful of `str` scans instead of a dozen Python calls. str.translate is fast only while every
# character maps to at most one character, so the one two-character fold (m -> rn) is a `replace` after it.
# Non-ASCII values, and the rare ASCII value holding a newline, go through `skeleton` / `words` one by one.
# A property test checks both give the same keys.
_SEP = "\n"
_TRAILING_DIGITS = re.compile(r"(?<=[A-Za-z])[0-9]+(?=[^A-Za-z0-9]|$)", re.MULTILINE)  # digits ending a word
_ONE_TO_ONE: dict[int, str | None] = {**{cp: v for cp, v in _ASCII_TABLE.items() if v != "rn"}, ord("m"): "m",
                                      ord("M"): "m", ord(_SEP): _SEP}
_ONE_TO_ONE_SPACED: dict[int, str | None] = {**_ONE_TO_ONE, ord(" "): " "}
_SPLIT_KEEP_SEP: dict[int, str] = {**_ASCII_SPLIT, ord(_SEP): _SEP}


def _bulk(values: list[str]) -> list[int]:
    return [i for i, v in enumerate(values) if v and v.isascii() and _SEP not in v]


def skeletons(values: list[str]) -> list[str]:
    """`[skeleton(v) for v in values]`, with ASCII values folded together."""
    joined = _SEP.join(values)
    if joined.isascii() and joined.count(_SEP) == len(values) - 1:  # all ASCII, no value holds the separator
        return joined.translate(_ONE_TO_ONE).replace("m", "rn").split(_SEP) if values else []
    out = [""] * len(values)
    plain = _bulk(values)
    folded = _SEP.join([values[i] for i in plain]).translate(_ONE_TO_ONE).replace("m", "rn")
    for i, key in zip(plain, folded.split(_SEP) if plain else [], strict=True):
        out[i] = key
    done = set(plain)
    for i, v in enumerate(values):
        if v and i not in done:
            out[i] = skeleton(v)
    return out


def words_of(values: list[str]) -> list[list[str]]:
    """`[words(v) for v in values]`, with ASCII values split, stripped of trailing digits and folded together."""
    return [line.split() for line in word_lines(values)]


def word_lines(values: list[str]) -> list[str]:
    """One line per value whose `split()` is `words(v)`, ASCII values folded together: values with the same
    words and separators give the same line ('Megan Bowen', 'megan.bowen1977'), so a caller can judge each
    distinct line once."""
    joined = _SEP.join(values)
    if joined.isascii() and joined.count(_SEP) == len(values) - 1:  # all ASCII, no value holds the separator
        if not values:
            return []
        split = _TRAILING_DIGITS.sub("", joined.translate(_SPLIT_KEEP_SEP))
        return split.translate(_ONE_TO_ONE_SPACED).replace("m", "rn").split(_SEP)
    out = [""] * len(values)
    plain = _bulk(values)
    split = _TRAILING_DIGITS.sub("", _SEP.join([values[i] for i in plain]).translate(_SPLIT_KEEP_SEP))
    lines = split.translate(_ONE_TO_ONE_SPACED).replace("m", "rn").split(_SEP) if plain else []
    for i, line in zip(plain, lines, strict=True):
        out[i] = line
    done = set(plain)
    for i, v in enumerate(values):
        if v and i not in done:
            out[i] = " ".join(words(v))
    return out
