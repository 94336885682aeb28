"""Seeded mutants of the real specs in ../shared/reference/specs, one family of mistake each.

`mutants(n, seed)` cycles through the families and the real specs, so every family meets every
spec; the same seed gives the same bytes on every machine. Each mutant names its family, so the
differential test can count per family and expect family-specific warnings.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from tasks.spec.schema import load_schema
from tests.spec._specs import ALL, kind_of, spec_bytes

#: Fields that may be written many times (a list, not a value TAO overwrites).
REPEATED = {f.name for m in load_schema().messages.values() for f in m.fields.values() if f.label == "repeated"}

_SCALAR_LINE = re.compile(r'(?m)^([ \t]*)([A-Za-z_]\w*)([ \t]*:[ \t]*)([^\s{#][^\n#]*?)[ \t]*$')
_NUMBER_VALUE = re.compile(r'(?m)^([ \t]*[A-Za-z_]\w*[ \t]*:[ \t]*)(-?[0-9.][0-9.eE+-]*)[ \t]*$')
_STRING_VALUE = re.compile(r'(?m)^([ \t]*[A-Za-z_]\w*[ \t]*:[ \t]*")([^"\n]*)(")')
_ENUM_VALUE = re.compile(r'(?m)^([ \t]*[A-Za-z_]\w*[ \t]*:[ \t]*)([A-Z][A-Z0-9_]+)[ \t]*$')
_BLOCK_OPEN = re.compile(r'(?m)^([ \t]*)([A-Za-z_]\w*)[ \t]*:?[ \t]*\{[ \t]*$')
_NAME = re.compile(r'(?m)^[ \t]*([A-Za-z_]\w*)')

ODD_NUMBERS = ["+2", "1_0", "0x1", "0X1F", "010", "00", "08", "0o17", "0b11", "inff", "+inf", "-inf", "Infinity",
               "nan", "-nan", "nanf", "1e5", "1E-3", ".5", "5.", "1.5f", "1F", "2ff", "0F", "1_", "1__0", "-0", "-00",
               "1.0", "-010", "+010", "0_1", "00.5", "4294967296", "-1", "2147483648", "1e39", "1e-50", "0x", "1L",
               "+inff", "infinityf", "0.5e-3f", "1_000.5", "-0x1", "0b2", "+-1", "--1", "1e", ".", "-.5", "5.e3"]
WRONG_VALUES = ['"text"', "1.5", "7", "true", "t", "False", "DBSCAN", "-3", "abc", "1e3", '"5"', "'x'", "0", "1"]
ENUM_SPELLINGS = ["dbscan", "DBSCAN_", "NMS", "HYBRID", "0", "1", "2", "7", "-1", "99999999999", "0x1", "010", "1_0",
                  "+1", '"DBSCAN"', "INTEGRATE", "L1", "Sample", "2147483647", "-2147483649", "1.0"]
ESCAPES = [r"\303\251", r"\d", r"\u00e9", r"\u20ac", r"\x4", r"\x41", r"\101", r"\777", r"\N{DASH}",
           r"\N{LATIN SMALL LETTER A}", r"\xff", r"\0", r"\'", r"\"", r"\\", r"\U0001F600", r"\ud800", r"\u12", r"\x",
           r"\q", r"\ ", "é", "😀", r"\n", r"\t", r"\377", r"\351", r"\303", "\\"]
SPACES = ["\u00a0", "\u3000", "\u2028", "\u2029", "\x85", "\u200b", "\u1680", "\x0c", "\x0b", "\x1c", "\ufeff", "\t",
          "\u202f", "\x00"]


@dataclass(frozen=True)
class Mutant:
    family: str
    spec: str  # the real spec it came from
    kind: str
    data: bytes


def _lines_matching(pattern: re.Pattern, text: str) -> list[re.Match]:
    return list(pattern.finditer(text))


def _replace_span(text: str, start: int, end: int, new: str) -> str:
    return text[:start] + new + text[end:]


def typo(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_NAME, text))
    name = m.group(1)
    i = rng.randrange(len(name))
    edits = [name[:i] + name[i + 1:], name[:i] + name[i] * 2 + name[i:], name.upper(), name.capitalize(),
             name + "s", name[:i] + "-" + name[i:], name[:i] + name[i + 1:i + 2] + name[i:i + 1] + name[i + 2:]]
    return _replace_span(text, m.start(1), m.end(1), rng.choice(edits) or "x")


def wrong_type(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_SCALAR_LINE, text))
    return _replace_span(text, m.start(4), m.end(4), rng.choice(WRONG_VALUES))


def bad_enum(rng: random.Random, text: str) -> str:
    found = _lines_matching(_ENUM_VALUE, text) or _lines_matching(_SCALAR_LINE, text)
    m = rng.choice(found)
    return _replace_span(text, m.start(2), m.end(2), rng.choice(ENUM_SPELLINGS))


def odd_number(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_NUMBER_VALUE, text) or _lines_matching(_SCALAR_LINE, text))
    return _replace_span(text, m.start(2), m.end(2), rng.choice(ODD_NUMBERS))


def split_sign(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_NUMBER_VALUE, text) or _lines_matching(_SCALAR_LINE, text))
    value = m.group(2).lstrip("-")
    sign = rng.choice(["- ", "-\n  ", "-# c\n", "+ ", "-\t", "-", "+", "- #c\n "])
    return _replace_span(text, m.start(2), m.end(2), sign + value)


def escape(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_STRING_VALUE, text))
    body = m.group(2)
    i = rng.randint(0, len(body))
    return _replace_span(text, m.start(2), m.end(2), body[:i] + rng.choice(ESCAPES) + body[i:])


def bad_utf8(rng: random.Random, text: str) -> bytes:
    data = text.encode()
    strings = [m.start(2) for m in _STRING_VALUE.finditer(text)]
    comments = [m.start() for m in re.finditer("#", text)]
    spot = rng.choice(strings + comments + [rng.randrange(len(text))])
    pos = len(text[:spot].encode())
    return data[:pos] + rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80"]) + data[pos:]


def bom(rng: random.Random, text: str) -> bytes:
    data = text.encode()
    if rng.random() < 0.7:
        return b"\xef\xbb\xbf" + data
    pos = len(text[: rng.randrange(len(text))].encode())
    return data[:pos] + b"\xef\xbb\xbf" + data[pos:]


def unicode_space(rng: random.Random, text: str) -> str:
    spots = [m.start() for m in re.finditer(r"[ \n]", text)]
    for _ in range(rng.randint(1, 3)):
        pos = rng.choice(spots)
        text = _replace_span(text, pos, pos + 1, rng.choice(SPACES))
    return text


def list_form(rng: random.Random, text: str, kind: str) -> str:
    if kind != "train":
        choices = ['\nkitti_config { num_shards: [2] }\n', '\ntarget_class_mapping: [{key: "a" value: "b"}, <key: "c">]\n',
                   '\ntarget_class_mapping [{key: "a" value: "b"}]\n', '\nsample_modifier_config { dominant_target_classes [ "a" ] }\n',
                   '\nsample_modifier_config { dominant_target_classes: [ "a", "b" ] }\n',
                   '\ncoco_config { num_shards [1, 2] }\n', '\ncoco_config { num_shards: [] }\n', '\nkitti_config: [{}]\n']
        return text + rng.choice(choices)
    model = text.find("model_config {")
    inserts = ["freeze_blocks [1, 2]", "freeze_blocks: [1, 2]", "freeze_blocks: []", "freeze_blocks: [0,]",
               "freeze_blocks: [,]", "num_layers: [18]", "freeze_blocks []", "freeze_blocks: [1 2]",
               "freeze_blocks: 0 freeze_blocks: [1.5, 2]", "objective_set: [{}]"]
    if model >= 0 and rng.random() < 0.6:
        pos = model + len("model_config {")
        return text[:pos] + "\n  " + rng.choice(inserts) + text[pos:]
    extra = ['\ndataset_config { data_sources [ { tfrecords_path: "/a/*" image_directory_path: "/a" }, '
             '< tfrecords_path: "/b/*" image_directory_path: "/b" > ] }\n',
             '\ndataset_config { target_class_mapping: [ { key: "x" value: "car" } ] }\n',
             '\ndataset_config { data_sources: [] }\n', '\ntraining_config: [ { num_epochs: 3 } ]\n',
             '\ntraining_config { visualizer { wandb_config { tags: ["a", "b"] } } }\n',
             '\ntraining_config { visualizer { wandb_config { tags ["a"] } } }\n']
    return text + rng.choice(extra)


def dup_scalar(rng: random.Random, text: str) -> str:
    m = rng.choice([m for m in _lines_matching(_SCALAR_LINE, text) if m.group(2) not in REPEATED])
    line = m.group(0)
    if rng.random() < 0.5:
        other = rng.choice(WRONG_VALUES[:1] + [m.group(4), "0", "2", "1.0", '"other"'])
        line = m.group(1) + m.group(2) + m.group(3) + other
    return text[: m.end()] + "\n" + line + text[m.end():]


def dup_block(rng: random.Random, text: str, kind: str) -> str:
    opens = [m for m in _lines_matching(_BLOCK_OPEN, text) if m.group(2) not in REPEATED]
    m = rng.choice(opens)
    depth, end = 0, m.end()
    for i in range(m.start(), len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    block = text[m.start():end]
    if rng.random() < 0.5:
        return text[:end] + "\n" + block + text[end:]
    partial = {"train": ["training_config { num_epochs: 7 }", "augmentation_config { preprocessing { output_image_width: 960 } }",
                         'dataset_config { image_extension: "jpg" }', "evaluation_config { first_validation_epoch: 2 }",
                         'model_config { arch: "vgg" }', "training_config { learning_rate { soft_start_annealing_schedule { "
                         "soft_start: 0.2 } } }", 'dataset_config { data_sources { tfrecords_path: "/other/*" } }'],
               "dataset_convert": ['kitti_config { val_split: 30 }', 'kitti_config { partition_mode: "sequence" }',
                                   'kitti_config { num_shards: 3 }', 'kitti_config { image_extension: ".jpg" }']}[kind]
    return text + "\n" + rng.choice(partial) + "\n"


def oneof(rng: random.Random, text: str, kind: str) -> str:
    if kind != "train":
        extra = rng.choice(['coco_config { root_directory_path: "/c" }', 'coco_config { }'])
        return (extra + "\n" + text) if rng.random() < 0.5 else (text + "\n" + extra + "\n")
    choices = [
        ("dataset_config {", '\n  validation_data_source { tfrecords_path: "/v/*" image_directory_path: "/v" }'),
        ("dataset_config {", "\n  validation_fold: 1"),
        ("learning_rate {", "\n    early_stopping_annealing_schedule { min_learning_rate: 1e-6 max_learning_rate: 1e-4 }"),
    ]
    anchor, insert = rng.choice(choices)
    pos = text.find(anchor)
    if pos < 0:
        return text + "\ndataset_config { validation_fold: 0 validation_data_source { tfrecords_path: \"/v\" } }\n"
    if anchor == "dataset_config {" and rng.random() < 0.5:  # in a later block, merged into the first one
        return text + "\ndataset_config {" + insert + "\n}\n"
    return text[: pos + len(anchor)] + insert + text[pos + len(anchor):]


def map_entry(rng: random.Random, text: str) -> str:
    entries = list(re.finditer(r'(?m)^[ \t]*(key|value):[^\n]*\n', text))
    if entries and rng.random() < 0.6:
        m = rng.choice(entries)
        return text[: m.start()] + text[m.end():]
    maps = list(re.finditer(r'(?m)^([ \t]*)(target_class_mapping|target_class_config|minimum_detection_ground_truth_overlap)'
                            r'[ \t]*\{', text))
    if not maps:
        return text + '\ntarget_class_mapping { key: "a" }\ntarget_class_mapping { }\n'
    m = rng.choice(maps)
    value = '"x"' if m.group(2) == "target_class_mapping" else ("0.5" if m.group(2).startswith("minimum") else "{ }")
    extra = rng.choice([f'{m.group(2)} {{ }}\n', f'{m.group(2)} {{ key: "car" }}\n', f'{m.group(2)} {{ value: {value} }}\n',
                        f'{m.group(2)} {{ key: "car" value: {value} }}\n', f'{m.group(2)} {{ key: "a" key: "b" value: {value} }}\n'])
    return text[: m.start()] + m.group(1) + extra + text[m.start():]


def separator(rng: random.Random, text: str) -> str:
    m = rng.choice(_lines_matching(_SCALAR_LINE, text) + _lines_matching(re.compile(r"(?m)^[ \t]*\}[ \t]*$"), text))
    return text[: m.end()] + rng.choice([";", ",", ";;", ", ;", " ;", ",,", "; ,"]) + text[m.end():]


def line_ending(rng: random.Random, text: str) -> bytes:
    choice = rng.random()
    if choice < 0.3:
        return text.replace("\n", "\r\n" if choice < 0.2 else "\r").encode()  # CRLF, or CR only (old Mac)
    spots = [m.start() for m in re.finditer("\n", text)]
    after_comment = [m.end() for m in re.finditer(r"#[^\n]*", text) if m.end() < len(text)]
    pos = rng.choice(after_comment if after_comment and choice < 0.6 else spots)
    return (text[:pos] + rng.choice(["\r", "\r\r", "\n\r", "\r\n"]) + text[pos + 1:]).encode()


def comment(rng: random.Random, text: str) -> str:
    pos = rng.randrange(len(text))
    return text[:pos] + rng.choice(["# x\n", "#", "#}\n", " # c", "#\r", "# \"\n"]) + text[pos:]


def brackets(rng: random.Random, text: str) -> str:
    opens = _lines_matching(_BLOCK_OPEN, text)
    m = rng.choice(opens)
    head = text[m.start():m.end()]
    new = rng.choice([head.replace("{", "<"), head.replace(" {", ": {"), head.replace("{", "["),
                      head.replace(" {", "{"), head.replace("{", ": <")])
    text = text[: m.start()] + new + text[m.end():]
    if "<" in new and rng.random() < 0.7:  # close it with '>' too, or leave a mismatched '}'
        depth = 0
        for i in range(m.start() + len(new) - 1, len(text)):
            if text[i] in "{<":
                depth += 1
            elif text[i] in "}>":
                depth -= 1
                if depth == 0:
                    return text[:i] + ">" + text[i + 1:]
    return text


def raw_bytes(rng: random.Random, data: bytes) -> bytes:
    """1-4 random byte edits (replace, insert, delete), biased to the format's own punctuation."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(len(buf) + 1)
        byte = rng.choice([ord(c) for c in "{}<>[]:;,-+\"'#\\ \n0.eEx_"] + [rng.randrange(256)])
        op = rng.choice(["replace", "insert", "delete"])
        if op == "insert" or pos == len(buf):
            buf.insert(pos, byte)
        elif op == "replace":
            buf[pos] = byte
        else:
            del buf[pos]
    return bytes(buf)


def drop_line(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


FAMILIES = {
    "typo": lambda r, t, k: typo(r, t),
    "wrong-type": lambda r, t, k: wrong_type(r, t),
    "bad-enum": lambda r, t, k: bad_enum(r, t),
    "odd-number": lambda r, t, k: odd_number(r, t),
    "split-sign": lambda r, t, k: split_sign(r, t),
    "escape": lambda r, t, k: escape(r, t),
    "bad-utf8": lambda r, t, k: bad_utf8(r, t),
    "bom": lambda r, t, k: bom(r, t),
    "unicode-space": lambda r, t, k: unicode_space(r, t),
    "list-form": list_form,
    "dup-scalar": lambda r, t, k: dup_scalar(r, t),
    "dup-block": dup_block,
    "oneof": oneof,
    "map-entry": lambda r, t, k: map_entry(r, t),
    "separator": lambda r, t, k: separator(r, t),
    "line-ending": lambda r, t, k: line_ending(r, t),
    "comment": lambda r, t, k: comment(r, t),
    "brackets": lambda r, t, k: brackets(r, t),
    "bytes": lambda r, t, k: raw_bytes(r, t.encode("utf-8")),
    "drop-line": lambda r, t, k: drop_line(r, t),
}


def _first(pattern: str, text: str) -> re.Match | None:
    return re.search(pattern, text, re.MULTILINE)


def _bare_cr(text: str, kind: str) -> dict[str, str | bytes | None]:
    """Every way a carriage return meets a spec, on one real spec (None: the spec has no place for it).

    TAO reads the file with open(path, "r") -- universal newlines -- before text_format.Merge, so a
    bare CR ends a line, a `#` comment and an unterminated string exactly as LF does. Each case holds
    at most one mistake, so the line TAO stops at is checked against ours.
    """
    comment = _first(r"#[^\n]*\n", text)
    opener = _first(r"\{[ \t]*\n", text)
    objectives = _first(r"objectives \{[ \t]*\n[ \t]*", text)
    string = _first(r':[ \t]*"([^"\n]{2,})"', text)
    number = _NUMBER_VALUE.search(text)
    second_eol = [m.start() for m in re.finditer("\n", text)][1]
    cr = text.replace("\n", "\r")
    crlf = text.replace("\n", "\r\n")
    head = "\r".join(cr.split("\r")[:3])
    return {
        "cr-only": cr,
        "crlf": crlf,
        "crlf-one-bare-cr": crlf[: crlf.index("\r\n")] + "\r" + crlf[crlf.index("\r\n") + 2:],
        "lf-cr": text[:second_eol] + "\n\r" + text[second_eol + 1:] + "unknown_after_blank: 1\n",
        "cr-only-unknown-field": cr + "no_such_field: 1\r",
        "cr-ends-comment": text[: comment.end() - 1] + "\r" + text[comment.end():] if comment else None,
        # `block { # c {<CR> field ...`: the CR ends the comment, the field and the block stay
        "cr-after-comment-on-opener": text[: opener.start()] + "{ # c { \r" + text[opener.end():] if opener else None,
        # the example: `objectives { # c<CR> name: "bbox" ... }`
        "objectives-comment-cr": (text[: objectives.start()] + "objectives { # c\r" + text[objectives.end():]
                                  if objectives else None),
        "cr-only-comment-cr": cr.replace("\r", " # c\r", 3),
        "cr-in-string": (text[: string.start(1) + 1] + "\r" + text[string.start(1) + 1:] if string else None),
        "cr-splits-sign": (text[: number.start(2)] + "-\r" + number.group(2).lstrip("-") + text[number.end(2):]
                           if number else None),
        "cr-only-trailing-comment": cr + "# the end",
        "cr-only-no-final-eol": cr.rstrip("\r"),
        # not UTF-8 on the 4th line: TAO's open().read() fails; our error must say line 4, not line 1
        "cr-only-bad-utf8": head.encode() + b"\r# \xff" + cr[len(head):].encode(),
    }


def bare_cr_cases() -> list[Mutant]:
    """The bare-CR cases of every real spec, family "bare-cr:<case>"."""
    out = []
    for name in ALL:
        text = spec_bytes(name).decode("utf-8").replace("\r\n", "\n")
        for case, result in _bare_cr(text, kind_of(name)).items():
            if result is not None:
                data = result if isinstance(result, bytes) else result.encode("utf-8")
                out.append(Mutant(f"bare-cr:{case}", name, kind_of(name), data))
    return out


def mutants(n: int, seed: int = 20261130) -> list[Mutant]:
    """`n` mutants, families and specs in turn, each from its own seeded generator."""
    families = list(FAMILIES)
    out = []
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        family = families[i % len(families)]
        name = ALL[(i // len(families)) % len(ALL)]
        kind = kind_of(name)
        text = spec_bytes(name).decode("utf-8")
        result = FAMILIES[family](rng, text, kind)
        out.append(Mutant(family, name, kind, result if isinstance(result, bytes) else result.encode("utf-8")))
    return out
