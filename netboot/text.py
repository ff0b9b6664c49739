"""Text that ends up inside a line of a phone's config file.

An inventory field or a config value is written into `key = value` lines:
nothing in it may end that line or hide what follows.
"""

from __future__ import annotations

import unicodedata

# A field ends up inside a line of a phone's config file: nothing in it may end
# that line or hide what follows. Control characters (C0, DEL, C1 such as NEL),
# the Unicode line and paragraph separators, format characters (bidi overrides,
# zero-width) and lone surrogates (undecodable bytes) are refused.
_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMES = {0x00: "NUL", 0x09: "TAB", 0x0B: "VT", 0x0C: "FF", 0x1B: "ESC", 0x7F: "DEL", 0x85: "NEL"}


def bad_character(text: str) -> int | None:
    """Index of the first character that may not be in a config value, or None."""
    if text.isascii() and text.isprintable():
        return None
    for index, ch in enumerate(text):
        if unicodedata.category(ch) in _BAD_CATEGORIES:
            return index
    return None


def describe_character(ch: str) -> str:
    """ "U+000B (VT)", "U+2028 (LINE SEPARATOR)", "byte 0xE9" (undecodable)."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: a byte that is not UTF-8
        return f"byte 0x{code - 0xDC00:02X}"
    name = _NAMES.get(code) or unicodedata.name(ch, "")
    return f"U+{code:04X}" + (f" ({name})" if name else "")
