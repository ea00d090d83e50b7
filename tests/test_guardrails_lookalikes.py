"""Look-alikes beyond characters: words in any order with titles, ignorables, small capitals, bidi,
mail entries at any domain; and precision: one real letter different is another person."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xts_pipeline.guardrails.confusables import DEFAULT_IGNORABLE, _letter_folds, skeleton, words
from xts_pipeline.guardrails.impersonation import (
    check_impersonation,
    find_impersonations,
    protected_identities,
)
from xts_pipeline.guardrails.policy import InboundPolicy

CEO = "Megan Bowen"
POLICY = InboundPolicy.model_validate({"impersonation": {"protected": [{"value": CEO, "label": "CEO"}]}})
PROTECTED = protected_identities(POLICY)


def row(sid: str, action: str = "create", current: dict | None = None, **desired):
    changes = [{"property": k, "old": None, "new": v} for k, v in desired.items()] if action != "create" else []
    return {"pair_key": "src__dst", "change_id": f"c-{sid}", "source_object_id": sid, "action": action,
            "target_user_id": None if action == "create" else f"t-{sid}", "desired": desired, "changes": changes,
            "current": current or {}}


def held(**desired) -> bool:
    return bool(find_impersonations([row("s1", **desired)], PROTECTED))


@pytest.mark.parametrize("name", [
    "Megan Bowen (CEO)", "Bowen, Megan", "Megan Bowen - IT Support", "BOWEN Megan", "Dr. Megan Bowen, PhD",
    "Megan \u3164Bowen", "Me\u115fgan Bowen", "Megan\u00adBowen", "\u1d0d\u1d07\u0262\u1d00\u0274 \u0299\u1d0f\u1d21\u1d07\u0274",
    "\u2133egan \u212cowen", "Megan Bowen2", "meganbowen-helpdesk", "M\u0435gan B\u043ewen (Finance)",
])
def test_title_order_ignorable_and_small_capital_tricks_are_held(name: str) -> None:
    assert held(displayName=name), name


@pytest.mark.parametrize("desired", [
    {"mail": "megan.bowen@evil.example"}, {"userPrincipalName": "bowen.megan_ceo@evil.example"},
    {"mailNickname": "MeganBowen"}, {"givenName": "Megan", "surname": "Bowen (CEO)", "displayName": "MB"},
])
def test_every_identity_field_of_the_record_is_compared(desired: dict) -> None:
    assert held(**desired), desired


@pytest.mark.parametrize("name", ["Megan Brown", "Meghan Bowen", "Morgan Bowen", "Megan Smith", "Bo Wen",
                                  "Megan", "Bowen", "Megan Bowers", "Magan Bowen"])
def test_near_namesakes_and_shared_first_names_are_not_held(name: str) -> None:
    assert not held(displayName=name), name


def test_a_single_word_protected_name_matches_only_a_whole_value() -> None:
    """Guard against a one-word protected value holding everyone who shares it (min_words=2)."""
    policy = InboundPolicy.model_validate({"impersonation": {"protected": ["Satya"]}})
    prot = protected_identities(policy)
    assert find_impersonations([row("s1", displayName="SATYA")], prot)
    assert not find_impersonations([row("s1", displayName="Satya Kumar")], prot)


def test_protected_mail_protects_its_local_part_at_any_domain() -> None:
    policy = InboundPolicy.model_validate({"impersonation": {"protected": ["ceo@contoso.com"]}})
    prot = protected_identities(policy)
    assert find_impersonations([row("s1", mail="ceo@fabrikam.example")], prot)
    assert find_impersonations([row("s1", mailNickname="CEO")], prot)
    assert not find_impersonations([row("s1", mail="cfo@fabrikam.example")], prot)


def test_bidi_controls_are_refused_in_identity_fields_naming_the_character() -> None:
    result = check_impersonation([row("s1", displayName="Megan \u202enewoB"), row("s2", surname="Sm\u2066ith")],
                                 PROTECTED, POLICY)
    assert result.blocked_user_ids == {"s1", "s2"}
    assert "U+202E RIGHT-TO-LEFT OVERRIDE" in result.message


def test_update_is_judged_on_the_post_write_record() -> None:
    """An update that writes only surname yields 'Megan' + 'Bowen' with the target's current givenName."""
    upd = row("s1", action="update", current={"givenName": "Megan", "surname": "Smith", "displayName": "M S"},
              surname="Bowen")
    assert find_impersonations([upd], PROTECTED)


def test_protected_users_own_record_is_not_an_impersonation_of_itself() -> None:
    target = [{"id": "t-s1", "displayName": "Alex Wilber", "mail": "alexw@dst.example"}]
    prot = protected_identities(POLICY, target, role_holders={"t-s1": "Global Administrator"})
    upd = row("s1", action="update", current={"displayName": "Alex Wilber"}, jobTitle="CTO")
    assert not find_impersonations([upd], prot)
    assert find_impersonations([row("s2", displayName="Wilber, Alex (IT)")], prot)


def test_small_capital_table_covers_unicode() -> None:
    """Every 'LATIN LETTER SMALL CAPITAL X' of the Unicode database folds to x (derived from names)."""
    folds = _letter_folds()
    for cp in range(0x80, 0x30000):
        name = unicodedata.name(chr(cp), "")
        if name.startswith("LATIN LETTER SMALL CAPITAL ") and len(name.removeprefix("LATIN LETTER SMALL CAPITAL ")) == 1:
            assert skeleton(chr(cp)) == skeleton(name[-1].lower()), (hex(cp), name)
            assert cp in folds or skeleton(chr(cp)) == skeleton(name[-1].lower())


def test_every_default_ignorable_is_dropped() -> None:
    for lo, hi in DEFAULT_IGNORABLE:
        for cp in (lo, hi):
            assert skeleton(f"Me{chr(cp)}gan") == skeleton("Megan"), hex(cp)


NAME = st.text(alphabet=string.ascii_letters, min_size=3, max_size=10)
TITLES = st.sampled_from(["(CEO)", "- IT Support", "[Finance]", "PhD", "Jr.", "via Contoso", "2"])


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=30))
def test_skeleton_is_idempotent(text: str) -> None:
    once = skeleton(text)
    assert skeleton(once) == once


@settings(max_examples=200)
@given(NAME, NAME, TITLES, st.booleans(), st.sampled_from([" ", ", ", " . ", "_"]))
def test_any_protected_name_with_any_title_or_order_matches(first: str, last: str, title: str, swap: bool,
                                                            sep: str) -> None:
    policy = InboundPolicy.model_validate({"impersonation": {"protected": [f"{first} {last}"]}})
    incoming = f"{last}{sep}{first}" if swap else f"{first}{sep}{last}"
    assert find_impersonations([row("s1", displayName=f"{incoming} {title}")], protected_identities(policy))


@settings(max_examples=200)
@given(NAME, NAME, st.data())
def test_one_real_letter_different_does_not_match(first: str, last: str, data: st.DataObject) -> None:
    """Replace one letter of the surname by a letter whose skeleton differs: another person."""
    i = data.draw(st.integers(0, len(last) - 1))
    letters = [c for c in string.ascii_lowercase if skeleton(c) != skeleton(last[i])
               and skeleton(last[:i] + c + last[i + 1:]) != skeleton(last)]
    other = last[:i] + data.draw(st.sampled_from(letters)) + last[i + 1:]
    from hypothesis import assume
    assume(skeleton(other) != skeleton(last) and words(other) != words(last))
    # ... and the changed word is not the first name or a run of both words.
    assume(skeleton(other) not in {skeleton(first), skeleton(first + last), skeleton(last + first)})
    policy = InboundPolicy.model_validate({"impersonation": {"protected": [f"{first} {last}"]}})
    assert not find_impersonations([row("s1", displayName=f"{first} {other}")], protected_identities(policy))


def test_long_protected_names_index_and_match() -> None:
    policy = InboundPolicy.model_validate({"impersonation": {"protected": ["Anna Maria de la Cruz"]}})
    prot = protected_identities(policy)
    assert find_impersonations([row("s1", displayName="de la Cruz, Anna Maria (Legal)")], prot)
    assert not find_impersonations([row("s1", displayName="Anna Maria Cruz")], prot)
