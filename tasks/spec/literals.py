"""Values of literals as TAO's parser reads them, for the current protobuf and for 3.20.x.

`text_format.Merge` hands each token to Python: integers to `int(text, 0)` (after turning a C
octal `010` into `0o10`), floats to `float()` (then `inf`/`nan` spellings and a trailing `f`),
strings through C-style unescaping to bytes that must be UTF-8. So `+2`, `1_0`, `0o17`, `0b11`,
`inff` are numbers, `0x1` is no bool, and `"\\303\\251"` is "é". TAO's TF1 containers may ship
protobuf 3.20.x, which reads a few literals differently (`010` as a float, `1F`, `\\u` escapes,
octal escapes above `\\377`); the `*_old` readers give its reading so the checker can warn where
the two disagree instead of deciding for one of them.
"""

from __future__ import annotations

import math
import re
import struct
import warnings

_C_OCTAL = re.compile(r"(-?)0(\d+)$")
_OCTAL_FLOAT = re.compile(r"-?0[0-9]+")
_INFINITY = re.compile(r"-?inf(?:inity)?f?$", re.IGNORECASE)
_NAN = re.compile(r"nanf?$", re.IGNORECASE)
_ONE_HEX_DIGIT = re.compile(r"(\\+)x([0-9a-fA-F])(?![0-9a-fA-F])")
INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_TRUE = ("true", "t", "1", "True")
_FALSE = ("false", "f", "0", "False")


class BadLiteral(ValueError):
    """The literal is no value of the wanted type; the message says what TAO's parser says."""


def parse_int(text: str, type_name: str) -> int:
    """`int32`/`uint32`/`int64`/`uint64` as `text_format.ParseInteger` reads it.

    >>> parse_int("010", "int32"), parse_int("1_0", "uint32"), parse_int("0x1F", "int64")
    (8, 10, 31)
    """
    m = _C_OCTAL.match(text)
    try:
        value = int(m.group(1) + "0o" + m.group(2) if m else text, 0)
    except ValueError:
        raise BadLiteral(f"{text} is not a whole number") from None
    lo, hi = INT_RANGES[type_name]
    if not lo <= value <= hi:
        raise BadLiteral(f"{text} is out of the {type_name} range {lo}..{hi}")
    return value


def _float_common(text: str, strip: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    if _INFINITY.match(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.match(text):
        return math.nan
    try:
        return float(text.rstrip(strip))
    except ValueError:
        raise BadLiteral(f"{text} is not a number") from None


def parse_float(text: str, type_name: str = "double") -> float:
    """A float/double as the current protobuf reads it; `float` fields keep float32 precision.

    >>> parse_float("+2"), parse_float("inff"), parse_float("1.5F"), parse_float("0.1", "float")
    (2.0, inf, 1.5, 0.10000000149011612)
    """
    if _OCTAL_FLOAT.match(text):
        raise BadLiteral(f"{text} is an octal-looking float, which protobuf refuses")
    return _precision(_float_common(text, "fF"), type_name)


def parse_float_old(text: str, type_name: str = "double") -> float:
    """protobuf 3.20.x: no octal check (`010` is 10.0) and only a lower-case `f` suffix."""
    return _precision(_float_common(text, "f"), type_name)


def _precision(value: float, type_name: str) -> float:
    if type_name != "float" or math.isinf(value) or math.isnan(value):
        return value
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:  # protobuf stores a float beyond float32 as infinity
        return math.copysign(math.inf, value)


def parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadLiteral(f"{text} is not true or false")


def parse_enum(text: str, names: tuple[str, ...]) -> str | int:
    """An enum name, or (proto3 enums are open) any int32 number; a known number gives its name."""
    try:
        number = int(text, 0)
    except ValueError:
        if text in names:
            return text
        raise BadLiteral(f"{text} is none of {', '.join(names)}") from None
    lo, hi = INT_RANGES["int32"]
    if not lo <= number <= hi:
        raise BadLiteral(f"{text} is out of the enum range {lo}..{hi}")
    return names[number] if 0 <= number < len(names) else number


def _codec(steps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # `\d` and friends: kept as written, with a DeprecationWarning
        return steps()


def unescape(body: str) -> bytes:
    """The bytes of a quoted literal's body as the current protobuf's `CUnescape` makes them."""
    fixed = _ONE_HEX_DIGIT.sub(_widen_hex, body)
    try:
        return _codec(
            lambda: fixed.encode("raw_unicode_escape").decode("raw_unicode_escape")
            .encode("utf-8").decode("unicode_escape").encode("latin-1")
        )
    except (UnicodeError, ValueError) as exc:
        raise BadLiteral(f"bad escape in a string ({exc.__class__.__name__}: {exc})") from None


def unescape_old(body: str) -> bytes:
    """protobuf 3.20.x's `CUnescape`: `\\u` escapes and octal escapes above \\377 come out differently."""
    fixed = _ONE_HEX_DIGIT.sub(_widen_hex, body)
    try:
        return _codec(lambda: fixed.encode("utf-8").decode("unicode_escape").encode("raw_unicode_escape"))
    except (UnicodeError, ValueError) as exc:
        raise BadLiteral(f"bad escape in a string ({exc.__class__.__name__}: {exc})") from None


def _widen_hex(m: re.Match) -> str:
    # Only an escaping backslash (an odd run) starts `\xH`; protobuf pads it to `\x0H`.
    return m.group(1) + "x0" + m.group(2) if len(m.group(1)) & 1 else m.group(0)


def utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLiteral(f"the string is not valid UTF-8 (byte 0x{data[exc.start]:02x})") from None
