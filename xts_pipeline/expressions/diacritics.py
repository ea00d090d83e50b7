"""NormalizeDiacritics, exactly per the character table in Microsoft's function reference.

Only the characters in the table are replaced (so e.g. a plain ``œ`` stays, while ``œ̄`` becomes
``oe`` as the table says).  Table entries that are base letter + combining marks are matched as
whole sequences, in both composed (NFC) and decomposed (NFD) spelling, longest first.
"""

from __future__ import annotations

import re
import unicodedata

# (comma-separated characters, replacement) — copied row by row from the doc's table.
_TABLE: tuple[tuple[str, str], ...] = (
    ("ä, à, â, ã, å, á, ą, ă, ā, ā́, ā̀, ā̂, ā̃, ǟ, ā̈, ǡ, a̱, å̄", "a"),
    ("Ä, À, Â, Ã, Å, Á, Ą, Ă, Ā, Ā́, Ā̀, Ā̂, Ā̃, Ǟ, Ā̈, Ǡ, A̱, Å̄", "A"),
    ("æ, ǣ", "ae"),
    ("Æ, Ǣ", "AE"),
    ("ç, č, ć, c̄, c̱", "c"),
    ("Ç, Č, Ć, C̄, C̱", "C"),
    ("ď, d̄, ḏ", "d"),
    ("Ď, D̄, Ḏ", "D"),
    ("ë, è, é, ê, ę, ě, ė, ē, ḗ, ḕ, ē̂, ē̃, ê̄, e̱, ë̄, e̊̄", "e"),
    ("Ë, È, É, Ê, Ę, Ě, Ė, Ē, Ḗ, Ḕ, Ē̂, Ē̃, Ê̄, E̱, Ë̄, E̊̄", "E"),
    ("ğ, ḡ, g̱", "g"),
    ("Ğ, Ḡ, G̱", "G"),
    ("ï, î, ì, í, ı, ī, ī́, ī̀, ī̂, ī̃, i̱", "i"),
    ("Ï, Î, Ì, Í, İ, Ī, Ī́, Ī̀, Ī̂, Ī̃, I̱", "I"),
    ("ľ, ł, l̄, ḹ, ḻ", "l"),
    ("Ł, Ľ, L̄, Ḹ, Ḻ", "L"),
    ("ñ, ń, ň, n̄, ṉ", "n"),
    ("Ñ, Ń, Ň, N̄, Ṉ", "N"),
    ("ö, ò, ő, õ, ô, ó, ō, ṓ, ṑ, ō̂, ō̃, ȫ, ō̈, ǭ, ȭ, ȱ, o̱", "o"),
    ("Ö, Ò, Ő, Õ, Ô, Ó, Ō, Ṓ, Ṑ, Ō̂, Ō̃, Ȫ, Ō̈, Ǭ, Ȭ, Ȱ, O̱", "O"),
    ("ø, ø̄, œ̄", "oe"),
    ("Ø, Ø̄, Œ̄", "OE"),
    ("ř, r̄, ṟ, ṝ", "r"),
    ("Ř, R̄, Ṟ, Ṝ", "R"),
    ("ß", "ss"),
    ("š, ś, ș, ş, s̄, s̱", "s"),
    ("Š, Ś, Ș, Ş, S̄, S̱", "S"),
    ("ť, ț, t̄, ṯ", "t"),
    ("Ť, Ț, T̄, Ṯ", "T"),
    ("ü, ù, û, ú, ů, ű, ū, ū́, ū̀, ū̂, ū̃, u̇̄, ǖ, ṻ, ṳ̄, u̱", "u"),
    ("Ü, Ù, Û, Ú, Ů, Ű, Ū, Ū́, Ū̀, Ū̂, Ū̃, U̇̄, Ǖ, Ṻ, Ṳ̄, U̱", "U"),
    ("ÿ, ý, ȳ, ȳ́, ȳ̀, ȳ̃, y̱", "y"),
    ("Ÿ, Ý, Ȳ, Ȳ́, Ȳ̀, Ȳ̃, Y̱", "Y"),
    ("ź, ž, ż, z̄, ẕ", "z"),
    ("Ź, Ž, Ż, Z̄, Ẕ", "Z"),
)


def _build() -> tuple[dict[int, str], re.Pattern[str] | None, dict[str, str]]:
    singles: dict[int, str] = {}
    sequences: dict[str, str] = {}
    for chars, repl in _TABLE:
        for raw in chars.split(","):
            key = raw.strip()
            for form in {key, unicodedata.normalize("NFC", key), unicodedata.normalize("NFD", key)}:
                if len(form) == 1:
                    singles[ord(form)] = repl
                else:
                    sequences[form] = repl
    ordered = sorted(sequences, key=len, reverse=True)
    pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
    return singles, pattern, sequences


_SINGLES, _SEQUENCES_RE, _SEQUENCES = _build()


def normalize_diacritics(text: str) -> str:
    """Replace the table's diacritic characters with plain letters; everything else is kept."""
    if text.isascii():
        return text
    if _SEQUENCES_RE is not None:
        text = _SEQUENCES_RE.sub(lambda m: _SEQUENCES[m.group(0)], text)
    return text.translate(_SINGLES)
