"""Hypothesis strategies and checks derived from botocore's own `mailmanager` service model.

Generic over Smithy shapes (structure, union, list, map, string with length/pattern/enum,
integer/long with range, boolean, timestamp, float): nothing here names a Mail Manager member,
except `SERVER_RULES`, the narrowings this server documents on top of the model.

- `valid(shape, rules)`: a value the model accepts (and the rules, where given), lengths at and
  between the bounds, optional members absent, JSON null (= absent in awsJson) or present.
- `broken(operation, rules)`: (body, site) with exactly one constraint broken: a required member
  missing or null, a string over its max, under its min, off its pattern or outside its enum, an
  integer out of range, a union with two members or none, a list over its max, a null list item,
  a wrong JSON type, or text no database stores (NUL, an unpaired surrogate).
- `violations(shape, value)`: what in a response breaks the model (required members, types,
  undeclared members, lengths, patterns, ranges); `lenient` names members whose length and
  pattern are not checked.

Patterns are the model's (ECMAScript regexes), matched as this server does: anchored, with
ECMAScript's `\\d`/`\\w` (ASCII), `\\s` (Unicode spaces) and `.` (any character but a line
terminator). Strings of an exact length are generated from the parsed regex, so a length bound
(a 1011-character ARN) is reached as often as a short value.
"""

import copy
import re
from dataclasses import dataclass, field
from functools import cache
from re import _constants as sre
from re import _parser as sre_parse

import botocore.session
from hypothesis import strategies as st

MODEL = botocore.session.get_session().get_service_model("mailmanager")
OPERATIONS = (
    "CreateRelay",
    "GetRelay",
    "ListRelays",
    "UpdateRelay",
    "DeleteRelay",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
)
# Errors every awsJson operation may answer besides the ones the model lists for it.
COMMON_ERRORS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "AccessDeniedException",
        "ThrottlingException",
        "SerializationException",
        "UnknownOperationException",
        "ValidationException",
    }
)
SERVER_ERRORS = frozenset({"InternalFailure", "ServiceUnavailable"})  # 5xx only

INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
CAP = 1 << 14  # longest string the length arithmetic tracks
DEFAULT_MAX = 300  # longest string generated where neither the model nor a rule bounds it
RUN = 16  # a longer run of one character class repeats a drawn stretch of at most this
LINE_TERMINATORS = "\n\r\u2028\u2029"
ECMA_SPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
# What no database stores and every door refuses (relays.validators.storable).
UNSTORABLE = ("\x00", "\ud800", "\udfff")
# Characters tried where a pattern is to be broken: each breaks a different kind of class.
PROBES = (
    " ",
    "\n",
    "\r",
    "\u2028",
    "!",
    "*",
    "#",
    "\u0661",
    "\u00e9",
    "\uff21",
    ",",
    "/",
    "_",
    ".",
)
ABSENT = object()  # a member left out (as opposed to a JSON null)
TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


# --- ECMAScript patterns as Python regexes ------------------------------------------------------


@cache
def model_regex(pattern):
    """The model's ECMAScript `pattern` as a Python regex with the same meaning, for fullmatch:
    `\\d` and `\\w` are ASCII (re.ASCII), `\\s` is ECMAScript's Unicode space class, `.` is
    any character but a line terminator, `$` is the very end."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            escaped = pattern[i + 1]
            if escaped == "s":
                out.append(ECMA_SPACE if in_class else f"[{ECMA_SPACE}]")
            elif escaped == "S" and not in_class:
                out.append(f"[^{ECMA_SPACE}]")
            elif escaped == "S":  # pragma: no cover - not in the models used here
                raise NotImplementedError(pattern)
            else:
                out.append(char + escaped)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            in_class = True
            out.append(char)
        elif char == ".":
            out.append(f"[^{LINE_TERMINATORS}]")
        elif char == "$":
            out.append(r"\Z")
        else:
            out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


# --- the regex as a tree: length sets and strings of an exact length ---------------------------


def _merge(intervals):
    merged = []
    for lo, hi in sorted(iv for iv in intervals if iv[0] <= CAP):
        hi = min(hi, CAP)
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _add(a, b):
    return _merge([(x[0] + y[0], x[1] + y[1]) for x in a for y in b])


def _intersect(a, b):
    return _merge(
        [
            (max(x[0], y[0]), min(x[1], y[1]))
            for x in a
            for y in b
            if max(x[0], y[0]) <= min(x[1], y[1])
        ]
    )


def _contains(a, n):
    return any(lo <= n <= hi for lo, hi in a)


@dataclass(eq=False)
class _Node:
    kind: str  # "lit", "set", "seq", "alt", "rep"
    char: str = ""
    chars: object = None  # strategy of one character ("set")
    test: object = None  # predicate of one character ("set")
    children: list = field(default_factory=list)
    lo: int = 0
    hi: int = 0

    @property
    def lengths(self):
        if not hasattr(self, "_lengths"):
            self._lengths = self._compute_lengths()
        return self._lengths

    def _compute_lengths(self):
        if self.kind in ("lit", "set"):
            return ((1, 1),)
        if self.kind == "seq":
            total = ((0, 0),)
            for child in self.children:
                total = _add(total, child.lengths)
            return total
        if self.kind == "alt":
            return _merge([iv for child in self.children for iv in child.lengths])
        child = self.children[0].lengths
        top = self.hi if self.hi is not None else CAP
        if len(child) == 1:  # one interval (a, b): n copies make (n*a, n*b)
            a, b = child[0]
            if a == 0:
                return ((0, min(top * b, CAP)),)
            return _merge((n * a, n * b) for n in range(self.lo, min(top, CAP // a) + 1))
        return _merge(iv for n in self._counts(None) for iv in self._power(n))

    def _power(self, n):
        if not hasattr(self, "_powers"):
            self._powers = {0: ((0, 0),)}
        while n not in self._powers:
            k = max(self._powers)
            self._powers[k + 1] = _add(self._powers[k], self.children[0].lengths)
        return self._powers[n]

    def _counts(self, length):
        """The repeat counts to consider (all of them up to CAP, or those that can make
        `length`)."""
        shortest = self.children[0].lengths[0][0]
        top = self.hi if self.hi is not None else CAP
        if shortest:
            top = min(top, (CAP if length is None else length) // shortest)
        elif length is not None:
            top = min(top, self.lo + length)
        else:
            top = min(top, self.lo + CAP)
        return range(self.lo, top + 1)


def _category(code):
    return {
        sre.CATEGORY_DIGIT: (lambda c: "0" <= c <= "9"),
        sre.CATEGORY_NOT_DIGIT: (lambda c: not "0" <= c <= "9"),
        sre.CATEGORY_WORD: (lambda c: c.isascii() and (c.isalnum() or c == "_")),
        sre.CATEGORY_NOT_WORD: (lambda c: not (c.isascii() and (c.isalnum() or c == "_"))),
        sre.CATEGORY_SPACE: (lambda c: c in " \t\n\r\x0b\x0c"),
        sre.CATEGORY_NOT_SPACE: (lambda c: c not in " \t\n\r\x0b\x0c"),
    }[code]


def _class_node(items):
    negated = bool(items) and items[0][0] is sre.NEGATE
    tests, strategies = [], []
    for op, av in items[1:] if negated else items:
        if op is sre.LITERAL:
            literal = chr(av)
            tests.append(lambda c, v=literal: c == v)
            strategies.append(st.just(literal))
        elif op is sre.RANGE:
            tests.append(lambda c, lo=av[0], hi=av[1]: lo <= ord(c) <= hi)
            strategies.append(
                st.characters(
                    min_codepoint=av[0], max_codepoint=av[1], exclude_categories=("Cs",)
                ).filter(lambda c: c != "\x00")
            )
        elif op is sre.CATEGORY:
            test = _category(av)
            tests.append(test)
            strategies.append(st.sampled_from([chr(n) for n in range(1, 128) if test(chr(n))]))
        else:  # pragma: no cover - not in the models used here
            raise NotImplementedError(op)

    def matches(c):
        return any(t(c) for t in tests) != negated

    chars = TEXT.filter(matches) if negated else st.one_of(strategies)
    return _Node("set", chars=chars, test=matches)


def _tree(parsed):
    nodes = [_node(op, av) for op, av in parsed]
    return nodes[0] if len(nodes) == 1 else _Node("seq", children=nodes)


def _node(op, av):
    if op is sre.LITERAL:
        return _Node("lit", char=chr(av))
    if op is sre.NOT_LITERAL:
        return _class_node([(sre.NEGATE, None), (sre.LITERAL, av)])
    if op is sre.IN:
        return _class_node(av)
    if op is sre.ANY:
        return _class_node([(sre.NEGATE, None), (sre.LITERAL, 10)])
    if op is sre.SUBPATTERN:
        return _tree(av[3])
    if op is sre.BRANCH:
        return _Node("alt", children=[_tree(branch) for branch in av[1]])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        hi = None if av[1] is sre.MAXREPEAT else av[1]
        return _Node("rep", lo=av[0], hi=hi, children=[_tree(av[2])])
    if op is sre.AT:
        return _Node("seq")
    raise NotImplementedError(op)  # pragma: no cover


@cache
def pattern_tree(pattern):
    regex = model_regex(pattern)
    return _tree(sre_parse.parse(regex.pattern, regex.flags))


def _pick(draw, intervals):
    """A length from `intervals`, its bounds as likely as the rest."""
    ends = sorted({end for iv in intervals for end in iv})
    if draw(st.booleans()):
        return draw(st.sampled_from(ends))
    lo, hi = draw(st.sampled_from(intervals))
    return draw(st.integers(lo, hi))


def _generate(draw, node, length):
    if node.kind == "lit":
        return node.char
    if node.kind == "set":
        return draw(node.chars)
    if node.kind == "alt":
        fits = [child for child in node.children if _contains(child.lengths, length)]
        return _generate(draw, draw(st.sampled_from(fits)), length)
    if node.kind == "rep":
        child = node.children[0]
        if child.kind == "set" and length <= RUN:
            return draw(st.text(alphabet=child.chars, min_size=length, max_size=length))
        if child.kind == "set":  # a long run: a drawn stretch, repeated (keeps examples small)
            stretch = draw(st.text(alphabet=child.chars, min_size=1, max_size=RUN))
            return (stretch * (length // len(stretch) + 1))[:length]
        if child.kind == "lit":
            return child.char * length
        counts = [n for n in node._counts(length) if _contains(node._power(n), length)]
        children = [child] * draw(st.sampled_from(counts))
    else:
        children = node.children
    return _sequence(draw, children, length)


def _sequence(draw, children, length):
    if not children:
        return ""
    rest = [((0, 0),)]
    for child in reversed(children[1:]):
        rest.append(_add(rest[-1], child.lengths))
    rest.reverse()
    parts = []
    for child, after in zip(children, rest, strict=True):
        span = _merge([(length - hi, length - lo) for lo, hi in after])
        own = _intersect(child.lengths, span)
        size = _pick(draw, own)
        parts.append(_generate(draw, child, size))
        length -= size
    return "".join(parts)


@st.composite
def matching(draw, pattern, low=0, high=DEFAULT_MAX, length=None):
    """A string that fully matches the model's `pattern`, `low` to `high` characters long (or
    exactly `length`)."""
    tree = pattern_tree(pattern)
    wanted = ((length, length),) if length is not None else ((low, high),)
    lengths = _intersect(tree.lengths, wanted)
    if not lengths:
        raise ValueError(f"{pattern} has no match of length {wanted}")
    return _generate(draw, tree, _pick(draw, lengths))


def can_match(pattern, length):
    return _contains(pattern_tree(pattern).lengths, length)


# --- rules: the server's documented narrowings of the model ----------------------------------


@dataclass(frozen=True)
class Rule:
    """A narrowing of one shape or member: bounds, values refused (and how a generated one is
    repaired: the same length, still matching the pattern), list items unique by a member, a
    quota (list items past it are refused with a quota error, not a ValidationException), or a
    strategy that replaces generation (an id that must exist)."""

    min: int | None = None
    max: int | None = None
    refuse: object = None  # value -> True when the server refuses it (ValidationException)
    repair: object = None  # refused value -> an accepted one
    unique: str | None = None
    quota: int | None = None
    strategy: object = None


_INTEGER = re.compile(r"[+-]?[0-9]+")
_ALNUM = re.compile(r"[A-Za-z0-9]")


# Keys: "Structure.member" (one member) or a shape name (everywhere that shape is used).
def _alnum_ends(s):
    return (
        ("a" if not _ALNUM.fullmatch(s[0]) else s[0])
        + s[1:-1]
        + (("a" if not _ALNUM.fullmatch(s[-1]) else s[-1]) if len(s) > 1 else "")
    )


SERVER_RULES = {
    # GreenArrow's rules apply too, the stricter wins (README: "Behaviour and choices"): a
    # name is not an integer, a host name starts and ends with a letter or digit.
    "RelayName": Rule(refuse=lambda s: bool(_INTEGER.fullmatch(s)), repair=lambda s: s[:-1] + "a"),
    "RelayServerName": Rule(
        refuse=lambda s: not (_ALNUM.fullmatch(s[0]) and _ALNUM.fullmatch(s[-1])),
        repair=_alnum_ends,
    ),
    # The model bounds no SecretArn; the column holds 2048 characters.
    "SecretArn": Rule(max=2048),
    "ListRelaysRequest.PageSize": Rule(min=1, max=50),
    # `aws:` keys are AWS's own; at most 50 tags per relay (ServiceQuotaExceededException).
    "TagKey": Rule(refuse=lambda s: s.lower().startswith("aws:"), repair=lambda s: "x" + s[1:]),
    "TagList": Rule(unique="Key", quota=50),
}


def _rule(rules, owner, member, shape):
    if owner is not None and f"{owner}.{member}" in rules:
        return rules[f"{owner}.{member}"]
    return rules.get(shape.name, Rule())


def string_bounds(shape, rule=Rule()):
    low = max(shape.metadata.get("min", 0), rule.min or 0)
    high = min(shape.metadata.get("max", CAP), rule.max if rule.max is not None else CAP)
    return low, high


def int_bounds(shape, rule=Rule()):
    low, high = INT_RANGES.get(shape.type_name, INT_RANGES["long"])
    low, high = max(low, shape.metadata.get("min", low)), min(high, shape.metadata.get("max", high))
    if rule.min is not None:
        low = max(low, rule.min)
    if rule.max is not None:
        high = min(high, rule.max)
    return low, high


# --- valid values -------------------------------------------------------------------------------


def _free_text(length):
    """Any storable text of `length` characters (a long one repeats a drawn stretch)."""
    if length <= RUN:
        return st.text(TEXT, min_size=length, max_size=length)
    stretch = st.text(TEXT, min_size=1, max_size=RUN)
    return stretch.map(lambda s: (s * (length // len(s) + 1))[:length])


def _bounded_ints(low, high):
    ends = [n for n in (low, low + 1, high - 1, high) if low <= n <= high]
    return st.one_of(st.sampled_from(ends), st.integers(low, high))


_VALID = {}


def valid(
    shape, rules=SERVER_RULES, rule=Rule(), success=True, nulls=True, short=False, complete=False
):
    key = (shape.name, id(rules), rule, success, nulls, short, complete)
    if key not in _VALID or _VALID[key][0] is not rules:
        _VALID[key] = (rules, _valid(shape, rules, rule, success, nulls, short, complete))
    return _VALID[key][1]


def _valid(shape, rules, rule, success, nulls, short, complete):
    """A strategy of values of `shape` the model (and `rules`) accept. With `success`, list
    quotas apply too; with `nulls`, an optional member is sometimes a JSON null; with `short`,
    strings are at most a few characters over their minimum (for lists of hundreds); with
    `complete`, every optional member of the top structure is present."""
    if rule.strategy is not None:
        return rule.strategy
    kind = shape.type_name
    if kind == "string":
        if shape.enum:
            base = st.sampled_from(shape.enum)
        else:
            low, high = string_bounds(shape, rule)
            if short:
                high = min(high, max(low, 1) + 3)
            if "pattern" in shape.metadata:
                base = matching(shape.metadata["pattern"], low, min(high, DEFAULT_MAX * 8))
            else:
                base = _bounded_ints(low, min(high, DEFAULT_MAX)).flatmap(_free_text)
        if rule.refuse is None:
            return base
        if rule.repair is not None:
            return base.map(lambda s: rule.repair(s) if s and rule.refuse(s) else s)
        return base.filter(lambda s: not (s and rule.refuse(s)))
    if kind in ("integer", "long"):
        return _bounded_ints(*int_bounds(shape, rule))
    if kind == "boolean":
        return st.booleans()
    if kind in ("float", "double"):
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "timestamp":
        return st.integers(0, 2**32)
    if kind == "list":
        low = shape.metadata.get("min", 0)
        high = shape.metadata.get("max", 20)
        if success and rule.quota is not None:
            high = min(high, rule.quota)
        member_rule = _rule(rules, None, None, shape.member)
        items = valid(shape.member, rules, member_rule, success, nulls, short)
        unique_by = (lambda item: item[rule.unique]) if rule.unique else None
        return st.lists(items, min_size=low, max_size=min(high, 60), unique_by=unique_by)
    if kind == "map":
        keys = valid(shape.key, rules, success=success, nulls=nulls, short=short)
        values = valid(shape.value, rules, success=success, nulls=nulls, short=short)
        return st.dictionaries(keys, values, max_size=shape.metadata.get("max", 5))
    if kind == "structure":
        return _structure(shape, rules, success, nulls, short, complete)
    raise NotImplementedError(kind)  # pragma: no cover


def _member_strategy(shape, name, rules, success, nulls, short=False):
    member = shape.members[name]
    return valid(member, rules, _rule(rules, shape.name, name, member), success, nulls, short)


@st.composite
def _structure(draw, shape, rules, success, nulls, short=False, complete=False):
    value = {}
    absent = [ABSENT, None] if nulls else [ABSENT]
    if shape.is_tagged_union:
        chosen = draw(st.sampled_from(sorted(shape.members)))
        for name in sorted(shape.members):
            if name == chosen:
                value[name] = draw(_member_strategy(shape, name, rules, success, nulls, short))
            else:
                value[name] = draw(st.sampled_from(absent))
    else:
        for name in shape.members:
            required = name in shape.required_members
            if required or complete or draw(st.booleans()):
                value[name] = draw(_member_strategy(shape, name, rules, success, nulls, short))
            else:
                value[name] = draw(st.sampled_from(absent))
    return {name: item for name, item in value.items() if item is not ABSENT}


def request(
    operation, rules=SERVER_RULES, overrides=None, success=True, nulls=True, complete=False
):
    """A valid input of `operation`; `overrides` maps "Structure.member" to a strategy."""
    if overrides:
        rules = {**rules, **{key: Rule(strategy=s) for key, s in overrides.items()}}
    shape = MODEL.operation_model(operation).input_shape
    return valid(shape, rules, success=success, nulls=nulls, complete=complete)


# --- one constraint broken ---------------------------------------------------------------------


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(TEXT, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_FRACTION = st.tuples(st.integers(-(2**40), 2**40), st.sampled_from([0.5, 0.25, 0.001])).map(
    lambda t: t[0] + t[1]
)
_JSON_TYPES = {
    "string": st.text(TEXT, max_size=8),
    "number": st.integers() | _FRACTION,
    "boolean": st.booleans(),
    "list": st.lists(_JSON, max_size=3),
    "object": st.dictionaries(st.text(TEXT, max_size=5), _JSON, max_size=3),
}
_JSON_TYPE_OF = {
    "string": "string",
    "integer": "number",
    "long": "number",
    "float": "number",
    "double": "number",
    "timestamp": "number",
    "boolean": "boolean",
    "list": "list",
    "map": "object",
    "structure": "object",
}


@cache
def _wrong_type(kind):
    """JSON values of another type than a `kind` shape's (never null: a null member is an
    absent one); for an integer, also a number with a fraction."""
    own = _JSON_TYPE_OF[kind]
    others = [strategy for name, strategy in _JSON_TYPES.items() if name != own]
    if kind in ("integer", "long"):
        others.append(_FRACTION)
    return st.one_of(others)


@dataclass(frozen=True)
class Site:
    """Where and how a value is broken: `path` (keys and indexes from the body), `rule` (what is
    broken), `make` (no argument: the strategy of the new value; or ABSENT to leave the member
    out). Strategies are made only for the site drawn."""

    path: tuple
    rule: str
    make: object
    kind: str = ""  # the type of the shape at `path`

    @property
    def member(self):
        return self.path[0]

    def __str__(self):
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return f"{where.lstrip('.')}: {self.rule}"


def _off_pattern(value, pattern):
    """Strategy: `value` with one character replaced so that `pattern` no longer matches."""
    regex = model_regex(pattern)

    @st.composite
    def replace(draw):
        at = draw(st.integers(0, len(value) - 1))
        options = [
            value[:at] + probe + value[at + 1 :]
            for probe in PROBES
            if not regex.fullmatch(value[:at] + probe + value[at + 1 :])
        ]
        if not options:  # this position takes every probe: break the start instead
            options = [
                probe + value[1:] for probe in PROBES if not regex.fullmatch(probe + value[1:])
            ]
        return draw(st.sampled_from(options))

    return replace()


def _over(value, pattern, high):
    """Strings of `high + 1` to `high + 8` characters: matching `pattern` where it can."""
    over = st.integers(high + 1, high + 8)
    if pattern and all(can_match(pattern, n) for n in range(high + 1, high + 9)):
        return over.flatmap(lambda n: matching(pattern, length=n))
    seed = value or "x"
    return over.map(lambda n: (seed * (n // len(seed) + 1))[:n])


def _under(value, pattern, low):
    if pattern and can_match(pattern, low - 1):
        return matching(pattern, length=low - 1)
    return st.just(value[: low - 1])


def _unstorable(value):
    return st.tuples(st.integers(0, len(value)), st.sampled_from(UNSTORABLE)).map(
        lambda t: value[: t[0]] + t[1] + value[t[0] + 1 :]
    )


def sites(shape, value, rules=SERVER_RULES, rule=Rule(), path=()):
    """Every way to break `value` (valid for `shape`) at one place."""
    kind = shape.type_name
    found = [Site(path, f"wrong JSON type for {kind}", lambda: _wrong_type(kind), kind)]
    if kind == "string" and shape.enum:
        outside = st.text(TEXT).filter(lambda s: s not in shape.enum)
        found.append(Site(path, "outside the enum", lambda: outside, kind))
    elif kind == "string":
        low, high = string_bounds(shape, rule)
        pattern = shape.metadata.get("pattern")
        if high < CAP:
            found.append(
                Site(path, f"longer than {high}", lambda: _over(value, pattern, high), kind)
            )
        if low > 0:
            found.append(
                Site(path, f"shorter than {low}", lambda: _under(value, pattern, low), kind)
            )
        if pattern and value:
            found.append(
                Site(path, f"does not match {pattern}", lambda: _off_pattern(value, pattern), kind)
            )
        found.append(Site(path, "unstorable text", lambda: _unstorable(value), kind))
    elif kind in ("integer", "long"):
        low, high = int_bounds(shape, rule)
        below = st.integers(low - 2**70, low - 1)
        above = st.integers(high + 1, high + 2**70)
        found.append(
            Site(path, f"below {low}", lambda: _bounded_ints(low - 2**70, low - 1) | below, kind)
        )
        found.append(
            Site(path, f"above {high}", lambda: _bounded_ints(high + 1, high + 2**70) | above, kind)
        )
    elif kind == "list":
        high = shape.metadata.get("max")
        member_rule = _rule(rules, None, None, shape.member)
        if high is not None:

            def more():
                item = valid(shape.member, rules, member_rule, False, False, short=True)
                unique_by = (lambda item: item[rule.unique]) if rule.unique else None
                return st.lists(item, min_size=high + 1, max_size=high + 2, unique_by=unique_by)

            found.append(Site(path, f"more than {high} items", more, kind))
        if shape.metadata.get("min"):
            found.append(
                Site(path, f"fewer than {shape.metadata['min']} items", lambda: st.just([]), kind)
            )
        for i, item in enumerate(value):
            found.append(
                Site((*path, i), "null list item", lambda: st.just(None), shape.member.type_name)
            )
            found += sites(shape.member, item, rules, member_rule, (*path, i))
            if rule.unique and len(value) > 1:
                twin = {**item, rule.unique: value[(i + 1) % len(value)][rule.unique]}
                found.append(
                    Site(
                        (*path, i),
                        f"{rule.unique} given twice",
                        lambda t=twin: st.just(t),
                        "structure",
                    )
                )
    elif kind == "structure":
        if shape.is_tagged_union:
            chosen = next(name for name, item in value.items() if item is not None)
            found.append(Site(path, "union with no member", lambda: st.just({}), kind))
            for name in sorted(shape.members):
                if name != chosen:
                    member = shape.members[name]
                    other_rule = _rule(rules, shape.name, name, member)

                    def both(member=member, other_rule=other_rule, name=name):
                        other = valid(member, rules, other_rule, nulls=False)
                        return other.map(lambda o: {**value, name: o})

                    found.append(Site(path, f"union with {chosen} and {name}", both, kind))
        for name, member in shape.members.items():
            member_rule = _rule(rules, shape.name, name, member)
            if name in shape.required_members:
                found.append(
                    Site((*path, name), "required member missing", ABSENT, member.type_name)
                )
                found.append(
                    Site(
                        (*path, name),
                        "required member null",
                        lambda: st.just(None),
                        member.type_name,
                    )
                )
            if value.get(name) is not None:
                found += sites(member, value[name], rules, member_rule, (*path, name))
    return found


def apply(body, site, new):
    """A copy of `body` with the value at `site.path` replaced by `new` (ABSENT: removed)."""
    if not site.path:
        return new
    body = copy.deepcopy(body)
    target = body
    for key in site.path[:-1]:
        target = target[key]
    if new is ABSENT:
        del target[site.path[-1]]
    else:
        target[site.path[-1]] = new
    return body


@st.composite
def broken(draw, operation, rules=SERVER_RULES, overrides=None, accept=None, nulls=True):
    """(body, site): a valid input of `operation` with one constraint broken at `site` (one
    `accept(site)` allows, when given); without `nulls`, no member of the valid input is a
    JSON null."""
    shape = MODEL.operation_model(operation).input_shape
    body = draw(request(operation, rules, overrides, success=False, nulls=nulls, complete=True))
    choices = [s for s in sites(shape, body, rules) if s.path and (accept is None or accept(s))]
    site = draw(st.sampled_from(choices))
    new = ABSENT if site.make is ABSENT else draw(site.make())
    return apply(body, site, new), site


# --- checking responses -------------------------------------------------------------------------


def violations(shape, value, lenient=frozenset(), path=None, owner=None, member=None, rules=None):
    """What in `value` (a parsed response member) breaks `shape`: [] when nothing does.
    `lenient` holds "Structure.member" names whose length and pattern are not checked; with
    `rules`, their bounds and refusals count too (for inputs)."""
    path = path or shape.name
    rule = _rule(rules, owner, member, shape) if rules else Rule()
    kind = shape.type_name
    problems = []
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        undeclared = set(value) - set(shape.members)
        problems += [f"{path}.{name}: not in the model" for name in sorted(undeclared)]
        problems += [
            f"{path}.{name}: required, missing"
            for name in shape.required_members
            if value.get(name) is None
        ]
        if shape.is_tagged_union and len([v for v in value.values() if v is not None]) != 1:
            problems.append(f"{path}: a union must have exactly one member")
        for name, item in value.items():
            if name in shape.members and item is not None:
                problems += violations(
                    shape.members[name], item, lenient, f"{path}.{name}", shape.name, name, rules
                )
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        low, high = shape.metadata.get("min", 0), shape.metadata.get("max")
        if len(value) < low or (high is not None and len(value) > high):
            problems.append(f"{path}: {len(value)} items, not {low} to {high}")
        if rule.unique and all(isinstance(item, dict) for item in value):
            keys = [item.get(rule.unique) for item in value]
            if len(set(map(repr, keys))) != len(keys):
                problems.append(f"{path}: a {rule.unique} given twice")
        for i, item in enumerate(value):
            if item is None:
                problems.append(f"{path}[{i}]: null")
                continue
            problems += violations(shape.member, item, lenient, f"{path}[{i}]", None, None, rules)
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: not a string"]
        if f"{owner}.{member}" in lenient:
            return []
        low, high = string_bounds(shape, rule)
        if rules and not all(c not in value for c in UNSTORABLE):
            problems.append(f"{path}: text no database stores")
        if rule.refuse and value and rule.refuse(value):
            problems.append(f"{path}: {value!r} is refused by this server")
        if not low <= len(value) <= high:
            problems.append(f"{path}: {len(value)} characters, not {low} to {high}")
        if "pattern" in shape.metadata and not model_regex(shape.metadata["pattern"]).fullmatch(
            value
        ):
            problems.append(f"{path}: {value!r} does not match {shape.metadata['pattern']}")
        if shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
        return problems
    if kind in ("integer", "long"):
        if type(value) is not int:
            return [f"{path}: not an integer"]
        low, high = int_bounds(shape, rule)
        return [] if low <= value <= high else [f"{path}: {value} not in {low}..{high}"]
    if kind == "timestamp":
        ok = type(value) in (int, float) and value >= 0
        return [] if ok else [f"{path}: not epoch seconds"]
    if kind == "boolean":
        return [] if type(value) is bool else [f"{path}: not a boolean"]
    if kind in ("float", "double"):
        return [] if type(value) in (int, float) else [f"{path}: not a number"]
    return [f"{path}: unchecked type {kind}"]  # pragma: no cover


def error_is_declared(operation, status, payload):
    """Problems with an error answer: its __type must be one the model declares for
    `operation` or a common one (a 5xx one only with a 5xx status), with a Message."""
    name = str(payload.get("__type", "")).rpartition("#")[2]
    declared = {e.name for e in MODEL.operation_model(operation).error_shapes}
    problems = []
    if status >= 500:
        if name not in SERVER_ERRORS:
            problems.append(f"{status} {name!r} is not a declared 5xx error")
    elif name not in declared | COMMON_ERRORS:
        problems.append(f"{name!r} is not declared for {operation}")
    if not isinstance(payload.get("Message"), str):
        problems.append("the error has no Message")
    return problems
