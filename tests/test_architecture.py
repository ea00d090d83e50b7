"""The import graph: no circle at run time (imports under TYPE_CHECKING don't count).

The layer rules themselves are import-linter contracts in pyproject.toml, run by `make lint`. This test
covers what a contract cannot say: that no group of modules imports itself back, directly or through
others, including imports hidden inside functions. There is none: the last one (definitions -> sync ->
cycle -> definitions) went when the cycle's summary moved to assets/summary.py.
"""

from __future__ import annotations

import grimp


def strongly_connected(adj: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: each group of two or more modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(adj):
        if root in index:
            continue
        work = [(root, iter(sorted(adj[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adj[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_strongly_connected_finds_a_circle_and_only_it():
    adj = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(adj) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_at_run_time():
    graph = grimp.build_graph("xts_pipeline", "assets", "checks", exclude_type_checking_imports=True,
                              cache_dir=None)
    adj = {m: {i for i in graph.find_modules_directly_imported_by(m) if i in graph.modules} for m in graph.modules}
    circles = strongly_connected(adj)
    assert not circles, "modules that import each other (move the shared part into a module of its own): " + \
        "; ".join(" <-> ".join(g) for g in circles)


def test_the_shared_words_are_spelled_only_in_the_vocabulary():
    """Issue 14: a pair key is turned into its shown name, and plan actions and hold kinds are listed, in
    xts_pipeline/vocabulary.py only; a second spelling would drift from it."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spelled = re.compile(r"""replace\(\s*['"]__['"]\s*,\s*['"]->['"]|\(\s*"create",\s*"adopt",\s*"update"|"held",\s*"blocked"\)""")
    offenders = []
    for package in ("xts_pipeline", "assets", "checks"):
        for path in (root / package).rglob("*.py"):
            if path.name == "vocabulary.py":
                continue
            offenders += [f"{path.relative_to(root)}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1)
                          if spelled.search(line)]
    assert offenders == [], f"use xts_pipeline.vocabulary instead: {offenders}"


def test_a_pair_key_is_shown_as_its_pair_name():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from xts_pipeline.vocabulary import pair_key, pair_name, shown_pair

    name = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}(_[A-Za-z0-9-]{1,5})?", fullmatch=True)

    @settings(deadline=None)  # from_regex examples are slow to draw on a loaded 2-core machine
    @given(name, name)
    def check(source: str, target: str) -> None:
        key = pair_key(source, target)
        assert shown_pair(key) == pair_name(source, target)

    check()


def test_the_vocabulary_imports_nothing_above_it():
    """vocabulary.py (and the plan fingerprint it re-exports) is imported by every layer, so it may import
    only its own leaves: a guardrail or store import there would come back round as a circle."""
    graph = grimp.build_graph("xts_pipeline", exclude_type_checking_imports=True, cache_dir=None)
    below = graph.find_upstream_modules("xts_pipeline.vocabulary")
    assert below <= {"xts_pipeline.fingerprint", "xts_pipeline.plan_columns"}, sorted(below)
