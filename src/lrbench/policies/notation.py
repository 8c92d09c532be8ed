"""Policy notation: how a person writes a policy, and how LRBench prints and stores one.

Grammar (names and parameter names are case-insensitive; spaces anywhere between tokens)::

    policy    := phase (">>" phase)*          every phase but the last has a [length]
    phase     := atom ("[" INTEGER "]")?
    atom      := NAME "(" [arg ("," arg)*] ")" | "(" policy ")"
    arg       := [PARAM "="] value            positional arguments in the function's order
    value     := NUMBER | "[" NUMBER ("," NUMBER)* "]"

``parse(str(p)) == p`` for every policy ``p``.

>>> parse("sin2( k0 = 1e-2, K1=0.06, l=2000 )")
<Policy SIN2(k0=0.01, k1=0.06, l=2000)>
>>> print(parse("FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)"))
FIX(k0=0.1)[15000] >> SINEXP(k0=0.0001, k1=0.9, gamma=0.99994, l=2000)
"""

from __future__ import annotations

import re
from typing import Any

from lrbench.policies.base import Policy
from lrbench.policies.composite import Composite, Phase
from lrbench.policies.functions import FUNCTIONS, LRFunction, make


# -- printing -----------------------------------------------------------------------------
def format_number(value: float | int) -> str:
    """The shortest text that reads back as the same number (``repr`` of a float)."""
    return repr(value) if isinstance(value, int) else repr(float(value))


def format_policy(policy: Policy) -> str:
    """A policy in notation, e.g. ``NSTEP(k0=0.01, gamma=0.1, l=[5000, 7000])``."""
    if isinstance(policy, Composite):
        parts = []
        for ph in policy.phases:
            text = format_policy(ph.policy)
            if isinstance(ph.policy, Composite):
                text = f"({text})"
            parts.append(text if ph.length is None else f"{text}[{ph.length}]")
        return " >> ".join(parts)
    if isinstance(policy, LRFunction):
        args = []
        for name in policy.param_names:
            if name in policy._p:
                value = policy._p[name]
                text = (
                    "[" + ", ".join(map(format_number, value)) + "]"
                    if isinstance(value, tuple)
                    else format_number(value)
                )
                args.append(f"{name}={text}")
        return f"{policy.name}({', '.join(args)})"
    raise TypeError(f"not a policy: {policy!r}")


# -- parsing ------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<number>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>>>|[()\[\],=]))"
)


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise ValueError(f"policy notation must be a string, got {text!r}")
        self.text = text
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                col = pos + len(stripped[pos:]) - len(stripped[pos:].lstrip())
                self.fail(f"unexpected character {stripped[col]!r}", col)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, message: str, col: int | None = None) -> None:
        if col is None:
            col = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        raise ValueError(f"cannot parse policy {self.text!r}: {message} (at column {col + 1})")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value) or (kind and tok[0] != kind):
            want = repr(value) if value else (kind or "more")
            got = "the end" if tok is None else repr(tok[1])
            self.fail(f"expected {want}, found {got}")
        self.i += 1
        return tok[1]  # type: ignore[index]

    def parse(self) -> Policy:
        if not self.tokens:
            self.fail("empty text", 0)
        policy = self.policy()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return policy

    def policy(self) -> Policy:
        phases = [self.phase()]
        while self.peek() and self.peek()[1] == ">>":  # type: ignore[index]
            if phases[-1].length is None:
                self.fail("every phase but the last needs a length, e.g. FIX(k0=0.1)[1000] >> ...")
            self.take(">>")
            phases.append(self.phase())
        if len(phases) > 1 and phases[-1].length is not None:
            self.fail(f"the last phase is open-ended: drop its length [{phases[-1].length}]")
        if len(phases) == 1 and phases[0].length is not None:
            self.fail(f"a length [{phases[0].length}] needs a following phase: ... >> POLICY")
        return Composite(phases)

    def phase(self) -> Phase:
        tok = self.peek()
        if tok and tok[1] == "(":
            self.take("(")
            policy = self.policy()
            self.take(")")
        else:
            policy = self.function()
        length = None
        if self.peek() and self.peek()[1] == "[":  # type: ignore[index]
            self.take("[")
            col = self.peek()[2] if self.peek() else len(self.text)  # type: ignore[index]
            number = self.take(kind="number")
            try:
                length = Phase(policy, _to_number(number)).length
            except ValueError:
                self.fail(f"a phase length must be a positive whole number, got {number}", col)
            self.take("]")
        return Phase(policy, length)

    def function(self) -> Policy:
        tok = self.peek()
        if tok is None or tok[0] != "name":
            self.fail("expected a function name such as FIX, STEP, SIN2")
        name = self.take(kind="name")
        cls = FUNCTIONS.get(name.upper())
        if cls is None:
            self.fail(f"unknown LR function {name!r}; valid functions: {', '.join(FUNCTIONS)}",
                      tok[2])  # type: ignore[index]
        self.take("(")
        params: dict[str, Any] = {}
        positional = [p for p in cls.param_names if p not in cls.optional]
        n_pos = 0
        while self.peek() and self.peek()[1] != ")":  # type: ignore[index]
            if params or n_pos:
                self.take(",")
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if self.peek()[0] == "name" and nxt and nxt[1] == "=":  # type: ignore[index]
                col = self.peek()[2]  # type: ignore[index]
                key = self.take().lower()
                if key not in cls.param_names:
                    self.fail(f"{cls.name} has no parameter {key!r}; valid parameters:"
                              f" {', '.join(cls.param_names)}", col)
                self.take("=")
            else:
                if len(params) > n_pos:  # a keyword argument was given before
                    self.fail("a positional argument cannot follow a keyword argument")
                if n_pos >= len(positional):
                    self.fail(f"{cls.name} takes {len(positional)} positional arguments"
                              f" ({', '.join(positional)})")
                key = positional[n_pos]
                n_pos += 1
            if key in params:
                self.fail(f"parameter {key!r} given twice")
            params[key] = self.value()
        self.take(")")
        try:
            return make(cls.name, **params)
        except ValueError as e:
            self.fail(str(e), tok[2])  # type: ignore[index]
            raise  # unreachable: fail raises

    def value(self) -> Any:
        if self.peek() and self.peek()[1] == "[":  # type: ignore[index]
            self.take("[")
            items = [self.scalar()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take(",")
                items.append(self.scalar())
            self.take("]")
            return items
        return self.scalar()

    def scalar(self) -> float | int:
        tok = self.peek()
        if tok and tok[0] == "name" and tok[1].lower() in ("inf", "nan", "infinity"):
            return float(self.take())  # let the policy say which parameter is not finite
        return _to_number(self.take(kind="number"))


def _to_number(text: str) -> float | int:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def parse(text: str) -> Policy:
    """Read a policy written in notation; a ValueError says what and where if it cannot."""
    return _Parser(text).parse()


def from_dict(data: dict[str, Any]) -> Policy:
    """The inverse of ``Policy.to_dict()``."""
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError(f"a policy dict needs a 'name', got {data!r}")
    if str(data["name"]).upper() == Composite.name:
        phases = data.get("phases")
        if not isinstance(phases, list):
            raise ValueError("a COMPOSITE policy dict needs a list of 'phases'")
        return Composite(
            [(from_dict(ph["policy"]), ph.get("length")) for ph in phases]
        )
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise ValueError(f"'params' must be a dict, got {params!r}")
    return make(data["name"], **params)
