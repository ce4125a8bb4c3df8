"""Problem sources → the problem schema of SPEC §3 (one row per problem).

>>> from codepref.problems import ProblemsConfig, load_problems
>>> ds = load_problems(ProblemsConfig(source="humaneval", limit=10))
"""

from __future__ import annotations

from .codecontests import load_codecontests
from .generic import load_generic
from .humaneval import load_humaneval, load_humaneval_plus
from .mbpp import load_mbpp, load_mbpp_plus
from .schema import PROBLEM_COLUMNS, PROBLEM_FEATURES, build_problems, validate_problem
from .stage import NAMED_SOURCES, ProblemsConfig, load_problems, select_problems
from .test_units import split_asserts, split_check_function

__all__ = [
    "PROBLEM_COLUMNS",
    "NAMED_SOURCES",
    "PROBLEM_FEATURES",
    "ProblemsConfig",
    "build_problems",
    "load_codecontests",
    "load_generic",
    "load_humaneval",
    "load_humaneval_plus",
    "load_mbpp",
    "load_mbpp_plus",
    "load_problems",
    "select_problems",
    "split_asserts",
    "split_check_function",
    "validate_problem",
]
