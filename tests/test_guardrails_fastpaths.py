"""The guardrails' fast paths give the verdicts of their reference paths.

The impersonation guardrail folds every distinct value of a plan at once (`skeletons`, `words_of`) and runs
the exact `_match` only for records `suspects` lets through; the validity guardrail decides a plain row with
one scan (`row_problems`). Each is checked here against the one-value-at-a-time code it stands in for.
"""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xts_pipeline.guardrails.confusables import skeleton, skeletons, word_lines, words, words_of
from xts_pipeline.guardrails.impersonation import (
    _bidi,
    _candidates,
    _local,
    _locals,
    _match,
    build_index,
    find_impersonations,
    protected_identities,
    suspects,
)
from xts_pipeline.guardrails.policy import InboundPolicy
from xts_pipeline.guardrails.rows import after
from xts_pipeline.guardrails.validity import row_problems, value_problems

POLICY = InboundPolicy.model_validate({"impersonation": {"protected": [
    {"value": "Megan Bowen", "label": "CEO"}, {"value": "Alex Wilber", "label": "CFO"},
    {"value": "Anna Maria de la Cruz", "label": "Legal"}, {"value": "ceo@fabrikam.example", "label": "CEO mailbox"},
    {"value": "Satya", "label": "founder"}]}})
PROTECTED = protected_identities(POLICY)
INDEX = build_index(PROTECTED)

# ASCII with every separator the bulk paths care about (newline included), plus confusables, ignorables,
# bidi controls, small capitals, diacritics and a noncharacter.
CHARS = string.ascii_letters + string.digits + " .,-_|@#()\n\t" + "еоаıßｍᴍʙ\u200b\u202e\u3164éŁ\uffff"
WORDS = ["Megan", "Bowen", "Alex", "Wilber", "Anna", "Maria", "de", "la", "Cruz", "CEO", "meganbowen", "Satya",
         "Brown", "bowen2", "bowen.megan1977", "a1b22", "007", "M\u0435gan", "ceo@fabrikam.example", "#EXT#", "@contoso.com", "_fab.com"]
text = st.text(alphabet=CHARS, max_size=24)
wordy = st.lists(st.sampled_from(WORDS) | text, max_size=5).map(lambda ws: " ".join(ws))
value = text | wordy
FIELDS = ("displayName", "givenName", "surname", "mail", "userPrincipalName", "mailNickname")
record = st.fixed_dictionaries({}, optional={f: value | st.none() | st.just("") for f in FIELDS})


@settings(max_examples=300, deadline=None)
@given(st.lists(value, max_size=8))
@example(["megan.bowen1977@contoso.com", "x9 a1b22 12", "Mmm|I0l\n1", "", "é\n"])
@example(["megan_contoso.com#ext#@fabrikam.com", "a@b"])
def test_bulk_skeletons_and_words_equal_one_at_a_time(values):
    assert skeletons(values) == [skeleton(v) for v in values]
    assert words_of(values) == [words(v) for v in values]
    assert [line.split() for line in word_lines(values)] == [words(v) for v in values]
    assert _locals([*values, None]) == [*(_local(v) if v else None for v in values), None]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, max_size=6))
def test_suspects_cover_every_record_the_reference_could_match(records):
    keys = set(INDEX.whole) | set(INDEX.by_pair) | set(INDEX.joined)
    for rec, maybe in zip(records, suspects(records, INDEX), strict=True):
        if not keys.isdisjoint(_candidates(rec)):
            assert maybe, rec


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record, max_size=6))
def test_find_impersonations_equals_the_exact_match_on_every_row(records):
    rows = [{"source_object_id": f"s{i}", "change_id": f"c{i}", "action": "create", "desired": r, "changes": [],
             "current": {}} for i, r in enumerate(records)]
    reference = []
    for row in rows:
        rec = after(row)
        hit = _bidi(rec) or _match(rec, INDEX, None)
        if hit:
            reference.append((row["source_object_id"], hit["field"], hit["protected"], hit["how"]))
    fast = [(f["source_object_id"], f["field"], f["protected"], f["how"]) for f in find_impersonations(rows, INDEX)]
    assert fast == reference


scalar = (st.none() | st.booleans() | st.integers() | value | st.text(alphabet="ab", min_size=15, max_size=20)
          | st.text(alphabet="ab", min_size=250, max_size=260))
written = st.dictionaries(st.sampled_from(["displayName", "employeeId", "mail", "city", "businessPhones",
                                           "extension_abc_x", "passwordProfile", "onPremisesExtensionAttributes",
                                           "streetAddress", "accountEnabled"]),
                          scalar | st.lists(scalar, max_size=3) | st.dictionaries(st.just("extensionAttribute1"),
                                                                                  value, max_size=1),
                          max_size=6)


@settings(max_examples=400, deadline=None)
@given(written)
@example({"city": "Seattle", "mail": "a@b.c", "businessPhones": ["1" * 1025]})
@example({"city": "Seattle", "mail": "a@b.c", "extension_abc_x": ["a" * 257], "employeeId": "E1"})
@example({"city": "Seattle", "mail": "a@b.c", "businessPhones": ["+1 555\x07"]})
def test_row_problems_equal_value_problems_per_attribute(wrote):
    assert row_problems(wrote) == [(a, p) for a, v in wrote.items() for p in value_problems(a, v)]
