"""Property tests: generated specs round-trip byte for byte; mutated real specs only raise SpecError."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.errors import SpecError
from tasks.spec import check_spec, extract_facts, parse_spec, rewrite_spec
from tests.spec._specs import ALL, kind_of, spec_bytes
from tests.spec.mutants import raw_bytes

_SETTINGS = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
trivia = st.lists(st.sampled_from([" ", "\t", "\n", "\r\n", "# note\n", "  #x{\"'\n"]), max_size=3).map("".join)
ints = st.integers(-(2**40), 2**40).map(str) | st.sampled_from(["0x1F", "017", "0"])
floats = st.sampled_from(["0.5", "5e-06", "9.99999974738e-05", "1.", ".25", "1E+3", "2.5f", "-inf", "nan", "-0.1"])
strings = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12).flatmap(
    lambda s: st.sampled_from(['"', "'"]).map(lambda q: q + s.replace("\\", "\\\\").replace(q, "\\" + q) + q)
)
scalars = ints | floats | strings | st.sampled_from(["true", "False", "DBSCAN", "t"])


def _field(children):
    scalar_field = st.tuples(names, trivia, scalars).map(lambda t: f"{t[0]}{t[1]}:{t[1]}{t[2]}")
    list_field = st.tuples(names, st.lists(scalars, max_size=3)).map(lambda t: f"{t[0]}: [{', '.join(t[1])}]")
    block = st.tuples(names, st.sampled_from([" {", ": {", "{", " <"]), trivia, children).map(
        lambda t: f"{t[0]}{t[1]}{t[2]}{t[3]}{'>' if t[1] == ' <' else '}'}"
    )
    return scalar_field | list_field | block


fields = st.recursive(
    st.just(""),
    lambda children: st.lists(
        st.tuples(_field(children), trivia, st.sampled_from(["", ";", ","])).map(lambda t: f"{t[0]}{t[2]}{t[1]} "),
        max_size=4,
    ).map("".join),
    max_leaves=12,
)


@_SETTINGS
@given(body=fields, lead=trivia)
def test_generated_specs_round_trip(body, lead):
    text = lead + body
    doc = parse_spec(text)
    assert doc.unparse() == text
    check_spec(doc)  # any field soup is checked without crashing (unknown fields are problems)


@st.composite
def mutated(draw):
    name = draw(st.sampled_from(ALL))
    return name, raw_bytes(random.Random(draw(st.integers(0, 2**32))), spec_bytes(name))


@_SETTINGS
@given(case=mutated())
def test_mutated_real_specs_raise_only_spec_error(case):
    name, data = case
    try:
        doc = parse_spec(data, name, kind_of(name))
        check_spec(doc)
        extract_facts(doc)
        rewrite_spec(doc, {}, num_epochs=3)
    except SpecError as exc:
        # A user's mistake says where: the file, with a line for each finding.
        located = [p for p in exc.problems if p.file == name and p.line is not None]
        assert located or (exc.where is not None and name in exc.where), exc.render()
