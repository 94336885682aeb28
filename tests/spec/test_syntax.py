"""The parser: real specs round-trip byte for byte, odd real-world forms parse, bad input says where."""

from __future__ import annotations

import pytest

from tasks.errors import SpecError
from tasks.spec import parse_spec
from tasks.spec.syntax import ListValue, MessageNode, Scalar
from tests.spec._specs import ALL, kind_of, spec_bytes


@pytest.mark.parametrize("name", ALL)
def test_real_specs_round_trip_byte_identical(name):
    data = spec_bytes(name)
    doc = parse_spec(data, name, kind_of(name))
    assert doc.unparse().encode("utf-8") == data
    assert doc.root.fields, "a real spec has top-level fields"


def _value(doc, *names):
    node = doc.root
    for name in names:
        field = next(f for f in node.fields if f.name == name)
        node = field.value
    return node


def test_odd_real_world_forms():
    text = (
        "a: {\n  b: 1 }\n"  # name: { and a closer on the value's line
        "c <d: 'single \\'q\\''>\n"  # angle brackets, single quotes with escapes
        "visualizer{e: True f: False}\n"  # no space before the brace, Python-style booleans
        "g: 9.99999974738e-05; h: -inf, i: 0x1F\n"  # exponent float, separators, -inf, hex
        'j: "con" \'cat\' "enated"\n'  # adjacent string concatenation
        "k: [1, 2, 3]\n"
        "#l: { commented: out }\n"
        "m [{n: 1}, <n: 2>]\n"
    )
    doc = parse_spec(text)
    assert doc.unparse() == text
    # A value is TAO's token as written; its meaning comes with the field's type (tasks.spec.literals).
    assert _value(doc, "a", "b").value == "1"
    assert _value(doc, "c", "d").value == "single 'q'"
    assert _value(doc, "visualizer", "e").value == "True"
    assert _value(doc, "g").value == "9.99999974738e-05"
    assert _value(doc, "h").value == "-inf"  # the sign belongs to the token, as in text_format
    assert _value(doc, "i").value == "0x1F"
    assert _value(doc, "j").value == "concatenated"
    k = _value(doc, "k")
    assert isinstance(k, ListValue) and [s.value for s in k.items] == ["1", "2", "3"]
    assert [f.name for f in doc.root.fields] == ["a", "c", "visualizer", "g", "h", "i", "j", "k", "m"]
    m = _value(doc, "m")
    assert all(isinstance(item, MessageNode) for item in m.items)
    assert isinstance(_value(doc, "g"), Scalar)


def test_token_positions():
    doc = parse_spec("a {\n\tb: 'x'\n}\n")
    b = doc.root.fields[0].value.fields[0]
    assert doc.where(b.name_token) == (2, 2)
    assert doc.where(b.value.first) == (2, 5)


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ("a {\n  b: 1\n", 3, 1, "missing '}' for the block opened at line 1"),
        ("a: 1\n}\n", 2, 1, "unexpected '}'"),
        ("a {\n  b 1\n}\n", 2, 5, "expected ':' or '{' after field name 'b'"),
        ('a: "open\n', 1, 4, "unterminated string"),
        ("a: 1\n  @\n", 2, 3, "expected a field name, found '@'"),
        ("\ufeffa: 1\n", 1, 1, "expected a field name, found '\\ufeff'"),  # TAO refuses a BOM too
        ("a: 'x' 'y\n", 1, 8, "unterminated string"),
        ("a: [1 2]\n", 1, 7, "expected ',' or ']'"),
        ("a:\n", 2, 1, "expected a value for 'a', found the end of the file"),
    ],
)
def test_syntax_errors_say_where_and_how(text, line, column, words):
    with pytest.raises(SpecError) as info:
        parse_spec(text, "s.txt")
    err = info.value
    assert words in err.what
    assert err.where == f"s.txt:{line}:{column}"
    (problem,) = err.problems
    assert (problem.line, problem.column) == (line, column) and problem.hint


def test_escapes_and_numbers_read_as_tao_reads_them():
    # Unknown escapes stay as written; escapes are bytes, so \303\251 is UTF-8 for é (facts §5).
    doc = parse_spec('a: "\\d\\303\\251" b: 12abc\n')
    assert _value(doc, "a").value == "\\dé"
    assert _value(doc, "b").value == "12abc"  # one token: its type decides (tasks.spec.check says wrong-type)
    bad = parse_spec('a: "\\xff"\n')
    assert _value(bad, "a").value is None and "UTF-8" in _value(bad, "a").error


def test_non_utf8_and_deep_nesting_are_spec_errors():
    with pytest.raises(SpecError, match="not UTF-8"):
        parse_spec(b"a: 1\nb: '\xff'\n")
    with pytest.raises(SpecError, match="nested deeper"):
        parse_spec("a {" * 200)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_a_bad_byte_is_placed_on_the_line_an_editor_shows(eol):
    """TAO reads a spec with universal newlines: a bare CR ends a line like LF and CRLF do, so a CR-only
    (old Mac) file's third line is line 3 in every message, not line 1."""
    data = eol.join([b"training_config {", b"  num_epochs: 3", b"  # caf\xe9 \xff", b"}", b""])
    with pytest.raises(SpecError) as info:
        parse_spec(data, "s.txt")
    assert info.value.where == "s.txt:3:8"  # the 8th character: the bad byte after "  # caf"
    assert (info.value.problems[0].line, info.value.problems[0].column) == (3, 8)
