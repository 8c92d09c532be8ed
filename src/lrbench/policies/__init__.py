"""The LR module: the 13 LR functions of the LRBench paper, LIN, composites and notation.

Pure Python and numpy: usable alone, from any framework.

>>> from lrbench.policies import parse, SIN2
>>> p = parse("SIN2(k0=0.01, k1=0.06, l=2000)")
>>> p == SIN2(k0=0.01, k1=0.06, l=2000), p.kind, p.n_params
(True, 'cyclic', 3)
"""

from lrbench.policies.base import Policy
from lrbench.policies.composite import Composite, Phase, Phases
from lrbench.policies.functions import (
    COS,
    EXP,
    FIX,
    FUNCTIONS,
    INV,
    LIN,
    NSTEP,
    PAPER_FUNCTIONS,
    POLY,
    SIN,
    SIN2,
    SINEXP,
    STEP,
    TRI,
    TRI2,
    TRIEXP,
    LRFunction,
    make,
)
from lrbench.policies.notation import format_policy, from_dict, parse

__all__ = [
    "COS", "EXP", "FIX", "INV", "LIN", "NSTEP", "POLY", "SIN", "SIN2", "SINEXP", "STEP", "TRI",
    "TRI2", "TRIEXP", "FUNCTIONS", "PAPER_FUNCTIONS", "Composite", "LRFunction", "Phase",
    "Phases", "Policy", "format_policy", "from_dict", "make", "parse",
]
