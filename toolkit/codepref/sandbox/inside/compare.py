"""Token-wise output comparison, like CodeContests checkers (whitespace-normalised, optional float tolerance).

Standalone on purpose: the fork server imports it as a top-level module.
"""

from __future__ import annotations

import math


def _num(tok: str) -> float | None:
    try:
        value = float(tok)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def outputs_match(actual: str, expected: str, float_tolerance: float | None = None) -> bool:
    """True when ``actual`` and ``expected`` have the same whitespace-separated tokens.

    With ``float_tolerance``, two finite numeric tokens also match when they differ by at most the tolerance,
    absolutely or relative to the expected value; an infinite one matches only the same infinity.
    """
    got, want = actual.split(), expected.split()
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=False):
        if g == w:
            continue
        if float_tolerance is None:
            return False
        gv, wv = _num(g), _num(w)
        if gv is None or wv is None:
            return False
        if math.isinf(gv) or math.isinf(wv):  # no tolerance around infinity: inf <= tol * inf holds for any gv
            if gv != wv:
                return False
            continue
        diff = abs(gv - wv)
        if not (diff <= float_tolerance or diff <= float_tolerance * abs(wv)):
            return False
    return True
