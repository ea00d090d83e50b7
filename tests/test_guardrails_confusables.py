"""skeleton(): look-alike names meet, different names stay apart."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xts_pipeline.guardrails.confusables import describe_lookalikes, skeleton

CEO = "Megan Bowen"  # a Microsoft 365 demo-tenant user, as in Graph's documented examples


@pytest.mark.parametrize(
    "variant",
    [
        "Megan Bowen",
        "megan bowen",
        "MEGAN BOWEN",
        "MeganBowen",
        "Megan  Bowen ",
        "Megan.Bowen",
        "megan_bowen",
        "Megan-Bowen",
        "Mégan Bówen",  # precomposed diacritics
        "Me\u0301gan Bowen",  # combining acute
        "M\u0435gan Bowen",  # Cyrillic е
        "Meg\u0430n B\u043ewen",  # Cyrillic а, о
        "\u041c\u0415GAN BOWEN",  # Cyrillic capital М, Е
        "Megan Β\u03bfwen",  # Greek capital Beta, small omicron
        "Ｍｅｇａｎ Ｂｏｗｅｎ",  # fullwidth
        "Megan B0wen",  # digit zero
        "Megan\u200bBowen",  # zero-width space
        "rnegan bowen",  # rn for m
    ],
)
def test_ceo_lookalikes_share_the_skeleton(variant: str) -> None:
    assert skeleton(variant) == skeleton(CEO)


@pytest.mark.parametrize("other", ["Megan Brown", "Meghan Bowen", "Morgan Bowen", "Alex Wilber", "Bowen Megan"])
def test_different_names_stay_apart(other: str) -> None:
    assert skeleton(other) != skeleton(CEO)


def test_l_capital_i_and_one_meet() -> None:
    assert skeleton("Bill Gates") == skeleton("BiII Gates") == skeleton("Bi11 Gates") == skeleton("bi|l gates")


def test_documented_tr39_pairs() -> None:
    # From Unicode confusables.txt: Cyrillic/Greek prototypes of Latin letters.
    pairs = {"\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0445": "x",
             "\u0443": "y", "\u0456": "i", "\u0455": "s", "\u03bf": "o", "\u03b1": "a", "\u03b9": "i", "\u03bd": "v"}
    for confusable, latin in pairs.items():
        assert skeleton(confusable) == skeleton(latin), unicodedata.name(confusable)


def test_empty_and_none() -> None:
    assert skeleton(None) == "" and skeleton("") == "" and skeleton(" .-_ ") == ""


def test_describe_names_the_trick() -> None:
    assert describe_lookalikes("M\u0435gan Bowen") == ["Cyrillic \u0435"]
    assert describe_lookalikes("Megan Bowen") == []


NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
LATIN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ", min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_skeleton_is_idempotent(text: str) -> None:
    once = skeleton(text)
    assert skeleton(once) == once


@settings(max_examples=200, deadline=None)
@given(LATIN, st.sampled_from(["upper", "lower", "title", "swapcase"]), st.sampled_from(["", " ", ".", "-", "_"]))
def test_case_space_punct_variants_share_skeleton(text: str, case: str, sep: str) -> None:
    variant = sep.join(getattr(text, case)().split(" "))
    assert skeleton(variant) == skeleton(text)


@settings(max_examples=200, deadline=None)
@given(LATIN, st.sampled_from(["\u0301", "\u0300", "\u0308", "\u0302", "\u0327"]))
def test_diacritic_variants_share_skeleton(text: str, mark: str) -> None:
    accented = "".join(ch + mark if ch.isalpha() else ch for ch in text)
    assert skeleton(unicodedata.normalize("NFC", accented)) == skeleton(text)


# Latin letter -> look-alikes from Unicode confusables.txt (Cyrillic, Greek, Armenian).
HOMOGLYPHS = {"a": "\u0430\u03b1", "c": "\u0441\u03f2", "e": "\u0435", "o": "\u043e\u03bf\u0585", "p": "\u0440\u03c1",
              "x": "\u0445", "y": "\u0443", "s": "\u0455", "i": "\u0456\u03b9", "j": "\u0458", "h": "\u04bb",
              "A": "\u0410\u0391", "B": "\u0412\u0392", "E": "\u0415\u0395", "H": "\u041d\u0397", "K": "\u041a\u039a",
              "M": "\u041c\u039c", "O": "\u041e\u039f", "P": "\u0420\u03a1", "T": "\u0422\u03a4", "X": "\u0425\u03a7"}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="".join(HOMOGLYPHS) + "bdgklmnrtuvw ", min_size=1, max_size=30), st.data())
def test_homoglyph_substitution_shares_skeleton(text: str, data: st.DataObject) -> None:
    swapped = "".join(
        data.draw(st.sampled_from(ch + HOMOGLYPHS[ch])) if ch in HOMOGLYPHS else ch for ch in text
    )
    assert skeleton(swapped) == skeleton(text)


def test_every_tr39_latin_lookalike_meets_its_prototype() -> None:
    """All of confusables.txt's characters with one ASCII look-alike (as shipped by confusable-homoglyphs)."""
    from confusable_homoglyphs.utils import load

    checked, wrong = 0, []
    for key, homoglyphs in load("confusables.json").items():
        ch = key.replace("\u200e", "")
        forms = {f for h in homoglyphs if (f := h["c"].replace("\u200e", "")).isascii() and f.isalnum()}
        if len(ch) == 1 and not ch.isascii() and len(forms) == 1:
            checked += 1
            ascii_form = forms.pop()
            if skeleton(ch) != skeleton(ascii_form):
                wrong.append((ch, unicodedata.name(ch, "?"), ascii_form))
    assert checked > 1000 and wrong == []
