"""netboot's client matching written as Kea 2.2 class expressions (no I/O).

Kea 2.2's expression language (Kea ARM, "Using Expressions in
Classification") has `==`, `substring`, `and`/`or`/`not`, `member`,
`option[N].text`/`.hex`, `pkt4.mac` and hex literals, but no regular
expression, no "contains" and no case folding (none of these is among
libkea-eval 2.2's tokens). So:

- a substring anywhere in option 60 (a `[[dhcp.class]]` vendor) is an `or`
  of `substring(option[60].text, i, n) == '...'` over every offset an option
  of at most 255 octets allows;
- case-insensitivity is the literal as written, in lower case, upper case and
  capitalised (the forms firmware sends: "yealink", "Yealink", "YEALINK");
- a vendor profile's option 60 regex is expanded to the finite set of strings
  it can start with (`^(?:CISCO|LINKSYS) SPA-?\\d` is 42 prefixes). Where the
  set is infinite (`\\w+`) the expansion stops and the strings found so far
  are prefixes: a superset, kept only when each is at least MIN_PREFIX long;
  a regex that gives nothing usable is left to the OUI (`unmatched`).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_OPTION = 255  # an option's data is at most 255 octets (RFC 2132 §2)
MAX_EXPANSION = 64  # strings one regex may expand to
MIN_PREFIX = 4  # a truncated expansion shorter than this would match far too much

_DIGITS = tuple("0123456789")
# Kea 2.2 has no boolean literals.
ALWAYS = "'a' == 'a'"
NEVER = "'a' == 'b'"


class Unsupported(ValueError):
    """A regex construct this translation does not handle."""


@dataclass(frozen=True)
class Literals:
    """What a regex matches, as literal strings: at the start (`anchored`),
    as the whole text (`exact`), or anywhere; `prefix_only` when the
    expansion stopped early (each string is then a necessary prefix)."""

    strings: tuple[str, ...]
    anchored: bool
    exact: bool
    prefix_only: bool


def _group(pattern: str, i: int) -> tuple[list[str], int]:
    """The alternatives of `(?:a|b)` starting at pattern[i] == '(' -> (strings, end)."""
    if not pattern.startswith("(?:", i):
        raise Unsupported("only non-capturing groups (?:...)")
    depth, j = 1, i + 3
    while j < len(pattern) and depth:
        if pattern[j] == "\\":
            j += 2
            continue
        depth += {"(": 1, ")": -1}.get(pattern[j], 0)
        j += 1
    if depth:
        raise Unsupported("unbalanced group")
    body = pattern[i + 3 : j - 1]
    branches: list[str] = []
    start, k, level = 0, 0, 0
    while k < len(body):
        if body[k] == "\\":
            k += 2
            continue
        if body[k] == "(":
            level += 1
        elif body[k] == ")":
            level -= 1
        elif body[k] == "|" and level == 0:
            branches.append(body[start:k])
            start = k + 1
        k += 1
    branches.append(body[start:])
    out: list[str] = []
    for branch in branches:
        found = _expand(branch)
        if found.prefix_only or found.anchored or found.exact:
            raise Unsupported("a group branch that is not a finite set of strings")
        out.extend(found.strings)
    return out, j


def _expand(pattern: str) -> Literals:
    """Expand a regex of the supported subset (see the module docstring)."""
    anchored = pattern.startswith("^")
    i = 1 if anchored else 0
    strings = [""]
    exact = False
    truncated = False
    while i < len(pattern):
        c = pattern[i]
        atom: list[str] | None
        if c == "$" and i == len(pattern) - 1:
            exact = True
            i += 1
            continue
        if c == "\\":
            if i + 1 >= len(pattern):
                raise Unsupported("trailing backslash")
            e = pattern[i + 1]
            i += 2
            if e == "b":
                continue  # a word boundary: ignoring it matches a superset
            if e == "d":
                atom = list(_DIGITS)
            elif e.isalnum():
                atom = None  # \w \s \S ...: a class too big to expand
            else:
                atom = [e]
        elif c == "(":
            atom, i = _group(pattern, i)
        elif c in ".[":
            atom = None
            i += 1
        elif c in "*+?{|)^$":
            raise Unsupported(f"{c!r} where a character was expected")
        else:
            atom = [c]
            i += 1
        # a quantifier on the atom
        low, high = 1, 1
        if i < len(pattern) and pattern[i] in "?*+{":
            q = pattern[i]
            if q == "?":
                low, high, i = 0, 1, i + 1
            elif q in "*+":
                low, high, i = (0 if q == "*" else 1), -1, i + 1
            else:
                end = pattern.index("}", i)
                counts = pattern[i + 1 : end].split(",")
                low = int(counts[0])
                high = int(counts[1]) if len(counts) > 1 and counts[1] else -1
                if len(counts) == 1:
                    high = low
                i = end + 1
        if atom is None or high < 0:
            if atom is not None and low > 0:  # x+: at least one x, then anything
                strings = [s + a for s in strings for a in atom]
            truncated = True
            break
        options = [""] if low == 0 else []
        seqs = [""]
        for n in range(1, high + 1):
            seqs = [s + a for s in seqs for a in atom]
            if len(seqs) > MAX_EXPANSION:
                break
            if n >= low:
                options.extend(seqs)
        if len(seqs) > MAX_EXPANSION or len(strings) * len(options) > MAX_EXPANSION:
            truncated = True
            break
        strings = [s + o for s in strings for o in options]
    if truncated:
        exact = False
    return Literals(tuple(dict.fromkeys(strings)), anchored, exact, truncated)


def expand_regex(pattern: str) -> Literals | None:
    """The literal strings a vendor profile's option 60 regex stands for, or
    None when no usable translation exists (the profile is then told by OUI)."""
    try:
        found = _expand(pattern)
    except (Unsupported, ValueError):
        return None
    if not found.strings or any(not s for s in found.strings):
        return None
    if found.prefix_only and any(len(s) < MIN_PREFIX for s in found.strings):
        return None
    return found


def case_forms(text: str) -> tuple[str, ...]:
    """As written, lower, upper, capitalised: the spellings matched without case folding."""
    return tuple(dict.fromkeys((text, text.lower(), text.upper(), text[:1].upper() + text[1:])))


def _literal(data: bytes) -> str:
    """A Kea string literal, or a hex literal where quoting could break."""
    text = data.decode("latin-1")
    if text.isascii() and text.isprintable() and "'" not in text:
        return f"'{text}'"
    return "0x" + data.hex()


def text_test(literals: Literals, option: int = 60) -> str:
    """A Kea expression true when option `option` matches `literals` (each
    string in each of its case forms)."""
    value = f"option[{option}].hex"
    terms: list[str] = []
    for base in literals.strings:
        for form in case_forms(base):
            data = form.encode("latin-1", "replace")
            lit = _literal(data)
            n = len(data)
            if literals.exact:
                terms.append(f"{value} == {lit}")
            elif literals.anchored:
                terms.append(f"substring({value},0,{n}) == {lit}")
            else:
                terms.extend(
                    f"substring({value},{i},{n}) == {lit}" for i in range(MAX_OPTION - n + 1)
                )
    return any_of(terms)


def substring_test(text: str, option: int = 60) -> str:
    """Option `option` contains `text` (any case form) at any offset."""
    return text_test(Literals((text,), anchored=False, exact=False, prefix_only=False), option)


def mac_prefix_test(prefix: bytes) -> str:
    """The client's hardware address starts with `prefix` (an OUI, a MAC)."""
    return f"substring(pkt4.mac,0,{len(prefix)}) == 0x{prefix.hex()}"


def enterprise_test(enterprise: int) -> str:
    """Option 60 in the RFC 3925 form, starting with this enterprise number."""
    return f"substring(option[60].hex,0,4) == 0x{enterprise:08x}"


def any_of(terms: list[str] | tuple[str, ...]) -> str:
    if not terms:
        return NEVER
    if len(terms) == 1:
        return terms[0]
    return " or ".join(f"({t})" for t in terms)


def all_of(terms: list[str] | tuple[str, ...]) -> str:
    if not terms:
        return ALWAYS
    if len(terms) == 1:
        return terms[0]
    return " and ".join(f"({t})" for t in terms)


def member(name: str) -> str:
    return f"member('{name}')"
