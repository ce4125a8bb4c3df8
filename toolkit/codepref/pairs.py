"""Preference pairs: the four papers' policies, as index pairs into ``samples``.

Each policy returns every valid candidate pair of a problem (so training can re-draw a
pair per epoch), as ``(chosen, rejected, kind)`` triples; :func:`build_pairs` adds them
to a dataset as the ``pairs`` column (SPEC §3). A pair's chosen sample is always better
than its rejected one by the policy's own criterion; no pair joins a sample with itself, and
no quick-vs-slow pair joins two copies of one program (:func:`program_key`). The one exception
is DSTC, whose pair is of concatenated (code, test) responses: (c*, t*) vs (c', t') with c* = c'
is a valid pair because t* ≠ t'. CodeDPO keeps, by default, the paper's one pair per instruction.

- Code-Optimise §3.2–3.3: problem filter (≥2 passing, ≥1 failing), PvF, QvS, All.
- IotaCode §2: each correct sample vs the Levenshtein-closest or a random incorrect one.
- CodeDPO §3.2–3.3: correctness pairs by self-validation score; efficiency pairs on
  credible tests, failing samples taking the maximal time penalty.
- DSTC §3: minimax selection (code + test concatenated at export time).
"""

from __future__ import annotations

import io
import math
import re
import tokenize
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from datasets import Dataset, List, Value

from .config import config_fingerprint, config_to_dict
from .errors import ConfigError, DataError
from .provenance import get_provenance, with_provenance
from .ranking import minimax, row_matrix, row_seed, self_validation

Pair = tuple[int, int, str]
POLICIES = ("code-optimise", "iotacode", "codedpo", "dstc")
PAIRS_FEATURE = List({"chosen": Value("int32"), "rejected": Value("int32"), "kind": Value("string")})
MINIMAX_FEATURE = {k: Value("int32") for k in ("chosen_code", "chosen_test", "rejected_test", "rejected_code")}
CODE_OPTIMISE_KINDS = ("pvf", "qvs")


# ---- shared ----------------------------------------------------------------------------------------------


def program_key(source: str) -> str:
    """A program with comments, blank lines and spacing normalised away (two samples with the same key
    are one program: never a quick-vs-slow pair, whatever their measured runtimes say)."""
    try:
        parts = []
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.ENDMARKER):
                continue
            parts.append(
                {tokenize.NEWLINE: "\n", tokenize.INDENT: "{", tokenize.DEDENT: "}"}.get(tok.type, tok.string)
            )
        return " ".join(parts)
    except (tokenize.TokenError, SyntaxError):  # not Python: whitespace and #-comments only
        return " ".join(re.sub(r"#[^\n]*", "", source).split())


def _distinct(programs: list[str] | None) -> np.ndarray | None:
    """``same[i, j]``: samples i and j are the same program (None when no programs are given)."""
    if programs is None:
        return None
    keys = [program_key(p) for p in programs]
    return np.array([[a == b for b in keys] for a in keys], dtype=bool)


# ---- Code-Optimise ---------------------------------------------------------------------------------------


def effective_passed(passed: np.ndarray, runtime: np.ndarray | None) -> np.ndarray:
    """Code-Optimise §3.2: a passing sample without a stable runtime counts as failed."""
    passed = np.asarray(passed, dtype=bool)
    if runtime is None:
        return passed
    return passed & ~np.isnan(runtime)


def keep_problem(passed: np.ndarray, min_passing: int = 2, min_failing: int = 1) -> bool:
    """Code-Optimise's filter: at least ``min_passing`` passing and ``min_failing`` failing samples."""
    n_pass = int(np.count_nonzero(passed))
    return n_pass >= min_passing and len(passed) - n_pass >= min_failing


def code_optimise_pairs(
    passed: np.ndarray,
    runtime: np.ndarray | None = None,
    *,
    kinds: tuple[str, ...] = CODE_OPTIMISE_KINDS,
    min_passing: int = 2,
    min_failing: int = 1,
    qvs_include_failed: bool = False,
    min_speedup: float = 0.0,
    programs: list[str] | None = None,
) -> list[Pair]:
    """PvF (passing vs failing) and QvS (quicker vs slower passing sample) pairs.

    Samples are ordered fast > slow > failed; ``qvs_include_failed`` reproduces the released
    code's variant where a failing sample may be the "slow" one. QvS needs
    ``runtime[slow] > runtime[quick] · (1 + min_speedup)`` (strictly faster by default) and, when
    ``programs`` are given, two different programs (:func:`program_key`): a quicker program is
    quicker because it is another program, not because of the measurement's noise.
    """
    ok = effective_passed(passed, runtime)
    if not keep_problem(ok, min_passing, min_failing):
        return []
    rt = np.where(ok, runtime if runtime is not None else 0.0, np.inf)
    order = np.argsort(rt, kind="stable")  # fast > slow > failed
    good = [int(i) for i in order if ok[i]]
    bad = [int(i) for i in order if not ok[i]]
    pairs: list[Pair] = []
    if "pvf" in kinds:
        pairs += [(p, f, "pvf") for p in good for f in bad]
    if "qvs" in kinds:
        if runtime is None:
            raise ValueError("QvS pairs need runtimes (run the timing stage first)")
        same = _distinct(programs)
        for a, quick in enumerate(good):
            limit = rt[quick] * (1.0 + min_speedup)
            pairs += [
                (quick, slow, "qvs")
                for slow in good[a + 1 :]
                if rt[slow] > limit and (same is None or not same[quick, slow])
            ]
        if qvs_include_failed:
            pairs += [(quick, f, "qvs") for quick in good for f in bad]
    return pairs


def top_fastest(passed: np.ndarray, runtime: np.ndarray | None, percent: float) -> list[int]:
    """Code-Optimise SFT_N: the top ``percent``% fastest passing samples (at least one if any pass)."""
    ok = effective_passed(passed, runtime)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return []
    if runtime is not None:
        idx = idx[np.argsort(runtime[idx], kind="stable")]
    k = max(1, math.ceil(idx.size * percent / 100.0))
    return [int(i) for i in idx[:k]]


# ---- IotaCode --------------------------------------------------------------------------------------------


def iotacode_pairs(
    samples: list[str], passed: np.ndarray, *, negatives: str = "mix", mix_ratio: float = 0.5, seed: int = 0
) -> list[Pair]:
    """For each correct sample, one incorrect one: Levenshtein-closest, random, or a seeded mix."""
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cdist

    passed = np.asarray(passed, dtype=bool)
    good, bad = np.flatnonzero(passed), np.flatnonzero(~passed)
    if good.size == 0 or bad.size == 0:
        return []
    rng = np.random.default_rng(seed)
    use_closest = {
        "levenshtein": np.ones(good.size, bool),
        "random": np.zeros(good.size, bool),
        "mix": rng.random(good.size) < mix_ratio,
    }[negatives]
    randoms = rng.integers(0, bad.size, size=good.size)
    closest = np.zeros(good.size, dtype=np.int64)
    if use_closest.any():
        dist = cdist(
            [samples[i] for i in good[use_closest]],
            [samples[j] for j in bad],
            scorer=Levenshtein.distance,
            dtype=np.int32,
            workers=1,
        )
        closest[use_closest] = dist.argmin(axis=1)  # ties → lowest index: deterministic
    return [
        (int(g), int(bad[closest[k]]), "closest") if use_closest[k] else (int(g), int(bad[randoms[k]]), "random")
        for k, g in enumerate(good)
    ]


# ---- CodeDPO ---------------------------------------------------------------------------------------------


def codedpo_pairs(
    matrix: np.ndarray,
    runtime: np.ndarray | None = None,
    *,
    min_margin: float = 0.1,
    min_speedup: float = 0.0,
    damping: float = 0.85,
    iterations: int = 10,
    programs: list[str] | None = None,
) -> list[Pair]:
    """Every valid CodeDPO correctness and efficiency pair (CodeDPO §3.2–3.3, Algorithm 1 l.31–36).

    Correctness: (i, j) with self-validation score s_i − s_j ≥ ``min_margin`` · max|s| (the
    paper drops pairs "whose scores are identical or too close"), largest gap first — the
    first pair is the paper's (top-ranked, low-ranked). Efficiency: credible tests are those
    the top-ranked sample passes; a sample failing one of them, or without a runtime, takes
    the maximal time penalty; pairs (fast, slow) with t_slow > t_fast · (1 + ``min_speedup``)
    of two different programs (when ``programs`` are given), fastest-vs-slowest first — the
    first is the paper's (c_fast, c_slow). :func:`codedpo_paper_pair` keeps the paper's one pair.
    """
    r = np.asarray(matrix, dtype=bool)
    n = r.shape[0]
    if n < 2:
        return []
    scores, _ = self_validation(r, damping, iterations)
    pairs: list[Pair] = []
    scale = float(np.abs(scores).max()) or 1.0
    gap = scores[:, None] - scores[None, :]
    ci, cj = np.nonzero(gap >= max(min_margin * scale, 1e-12))
    order = np.lexsort((cj, ci, -gap[ci, cj]))
    pairs += [(int(ci[k]), int(cj[k]), "correctness") for k in order]
    if runtime is not None and r.shape[1]:
        top = int(np.argmax(scores))
        credible = r[top]
        if credible.any():
            ok = r[:, credible].all(axis=1) & ~np.isnan(runtime)
            t = np.where(ok, np.nan_to_num(runtime, nan=np.inf), np.inf)
            quicker = ok[:, None] & (t[None, :] > t[:, None] * (1.0 + min_speedup))
            same = _distinct(programs)
            if same is not None:
                quicker &= ~same
            fast, slow = np.nonzero(quicker)
            eorder = np.lexsort((slow, -t[slow], t[fast]))  # fastest first, then slowest first
            pairs += [(int(fast[k]), int(slow[k]), "efficiency") for k in eorder]
    return pairs


def codedpo_split(task_id: str, seed: int, efficiency_share: float) -> str:
    """Which kind of pair an instruction gives: ``"efficiency"`` for a seeded ``efficiency_share`` of
    the instructions, ``"correctness"`` for the rest (the same task id and seed always agree)."""
    draw = row_seed(seed, f"codedpo-split:{task_id}") / 2.0**64
    return "efficiency" if draw < efficiency_share else "correctness"


def codedpo_paper_pair(pairs: list[Pair], kind: str) -> list[Pair]:
    """CodeDPO's dataset entry for one instruction (Algorithm 1 l.32–36): the (c_top, c_low) pair for
    ``kind="correctness"`` or the (c_fast, c_slow) pair for ``"efficiency"`` — the first of that kind
    in :func:`codedpo_pairs`' order. "We carefully avoid overlap between the data seeds of correctness
    and efficiency samples" (§3.4): an instruction gives one kind only; when it has no pair of its
    assigned kind it gives the other kind's (still one entry, still disjoint)."""
    for wanted in (kind, "efficiency" if kind == "correctness" else "correctness"):
        first = next((p for p in pairs if p[2] == wanted), None)
        if first is not None:
            return [first]
    return []


# ---- DSTC ------------------------------------------------------------------------------------------------


def dstc_pairs(matrix: np.ndarray, seed: int = 0) -> tuple[list[Pair], dict[str, int | None]]:
    """DSTC minimax pair (chosen c*, rejected c') when both are feasible, plus the full choice.

    "For DPO ... we filter out the data without both feasible chosen and rejected responses" (§3).
    The responses are the concatenations (c*, t*) and (c', t'); c* = c' is a valid pair (c* passes
    t* and fails t', so t* ≠ t'). KTO keeps a feasible chosen response alone (see ``export``).
    """
    choice = minimax(matrix, seed)
    info = {
        "chosen_code": choice.chosen_code,
        "chosen_test": choice.chosen_test,
        "rejected_test": choice.rejected_test,
        "rejected_code": choice.rejected_code,
    }
    if choice.chosen_code is None or choice.rejected_code is None:
        return [], info
    return [(choice.chosen_code, choice.rejected_code, "dstc")], info


# ---- the dataset transform -------------------------------------------------------------------------------


@dataclass
class PairsConfig:
    """Which pair policy to apply, with its parameters (defaults are the papers')."""

    policy: Literal["code-optimise", "iotacode", "codedpo", "dstc"] = field(
        default="code-optimise", metadata={"help": "code-optimise | iotacode | codedpo | dstc"}
    )
    kinds: list[str] = field(
        default_factory=lambda: ["pvf", "qvs"],
        metadata={"help": "code-optimise: pvf, qvs or both (= the paper's All)"},
    )
    min_passing: int = field(default=2, metadata={"help": "code-optimise filter: minimum passing samples"})
    min_failing: int = field(default=1, metadata={"help": "code-optimise filter: minimum failing samples"})
    qvs_include_failed: bool = field(
        default=False,
        metadata={"help": "code-optimise: let a failing sample be QvS's slow one (the released code's variant)"},
    )
    min_speedup: float = field(
        default=0.05,
        metadata={
            "help": "qvs/efficiency: the slow sample must be slower by more than this fraction (default 5%: above "
            "the resolution of a CPU-time measurement — code-optimise's gate admits a CoV of 10% per batch of 50 "
            "runs, a standard error of ~1.4% — and far above count mode's); 0 = any difference"
        },
    )
    negatives: Literal["levenshtein", "random", "mix"] = field(
        default="mix", metadata={"help": "iotacode: Levenshtein-closest, random, or a mix of incorrect samples"}
    )
    mix_ratio: float = field(default=0.5, metadata={"help": "iotacode mix: share of closest negatives"})
    min_margin: float = field(
        default=0.1, metadata={"help": "codedpo: minimum score gap, as a fraction of the problem's top score"}
    )
    tests: Literal["ground_truth", "generated", "both"] | None = field(
        default=None,
        metadata={"help": "codedpo/dstc matrix: ground_truth, generated or both (default: generated if present)"},
    )
    select: Literal["paper", "all"] = field(
        default="paper",
        metadata={
            "help": "codedpo: paper = one pair per instruction (Algorithm 1: (c_top, c_low) or (c_fast, c_slow)), "
            "correctness and efficiency from disjoint instructions; all = every valid pair (for per-epoch "
            "re-drawing from the candidates export)"
        },
    )
    efficiency_share: float = field(
        default=0.5,
        metadata={
            "help": "codedpo select=paper: the seeded share of instructions that give an efficiency pair (the rest "
            "a correctness pair; one with no pair of its kind gives the other kind's)"
        },
    )
    damping: float = field(default=0.85, metadata={"help": "codedpo self-validation damping d"})
    iterations: int = field(default=10, metadata={"help": "codedpo self-validation iterations T"})
    seed: int = field(default=0, metadata={"help": "Seed for every random choice (ties, random negatives)"})

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"unknown pair policy {self.policy!r}; choose one of {', '.join(POLICIES)}")
        bad = [k for k in self.kinds if k not in CODE_OPTIMISE_KINDS]
        if bad or not self.kinds:
            raise ConfigError(f"kinds must be a non-empty subset of {CODE_OPTIMISE_KINDS}, got {self.kinds}")
        if self.negatives not in ("levenshtein", "random", "mix"):
            raise ConfigError(f"negatives must be levenshtein, random or mix, got {self.negatives!r}")
        for name in ("min_passing", "min_failing"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if not 0.0 <= self.mix_ratio <= 1.0 or self.min_margin < 0 or self.min_speedup < 0:
            raise ConfigError("mix_ratio must be in [0, 1]; min_margin and min_speedup must be >= 0")
        if not 0.0 <= self.efficiency_share <= 1.0:
            raise ConfigError(f"efficiency_share must be in [0, 1], got {self.efficiency_share}")
        if self.select not in ("paper", "all"):
            raise ConfigError(f"select must be paper or all, got {self.select!r}")


def _runtime(row: dict, n: int) -> np.ndarray | None:
    values = row.get("runtime_ns")
    if values is None:
        return None
    if len(values) != n:
        raise DataError(
            f"has {len(values)} entries but the problem has {n} samples", task_id=row["task_id"], field="runtime_ns"
        )
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _passed(row: dict, n: int) -> np.ndarray:
    if row.get("passed") is None:
        raise DataError("missing (run execute first)", task_id=row["task_id"], field="passed")
    if len(row["passed"]) != n:
        raise DataError(
            f"has {len(row['passed'])} entries but the problem has {n} samples", task_id=row["task_id"], field="passed"
        )
    return np.asarray(row["passed"], dtype=bool)


def row_pairs(row: dict, cfg: PairsConfig) -> tuple[list[Pair], dict | None]:
    """All pairs of one problem row under ``cfg`` (and DSTC's minimax choice)."""
    if "samples" not in row:
        raise DataError("missing (run sample first)", task_id=row.get("task_id"), field="samples")
    n = len(row["samples"])
    seed = row_seed(cfg.seed, row["task_id"])
    if cfg.policy == "code-optimise":
        return code_optimise_pairs(
            _passed(row, n),
            _runtime(row, n),
            kinds=tuple(cfg.kinds),
            min_passing=cfg.min_passing,
            min_failing=cfg.min_failing,
            qvs_include_failed=cfg.qvs_include_failed,
            min_speedup=cfg.min_speedup,
            programs=row["samples"],
        ), None
    if cfg.policy == "iotacode":
        return iotacode_pairs(
            row["samples"], _passed(row, n), negatives=cfg.negatives, mix_ratio=cfg.mix_ratio, seed=seed
        ), None
    tests = cfg.tests or ("generated" if row.get("gen_exec_matrix") is not None else "ground_truth")
    matrix = row_matrix(row, tests)
    if cfg.policy == "codedpo":
        pairs = codedpo_pairs(
            matrix,
            _runtime(row, n),
            min_margin=cfg.min_margin,
            min_speedup=cfg.min_speedup,
            damping=cfg.damping,
            iterations=cfg.iterations,
            programs=row["samples"],
        )
        if cfg.select == "paper":
            pairs = codedpo_paper_pair(pairs, codedpo_split(row["task_id"], cfg.seed, cfg.efficiency_share))
        return pairs, None
    return dstc_pairs(matrix, seed)


def build_pairs(ds: Dataset, cfg: PairsConfig | None = None) -> Dataset:
    """Add the ``pairs`` column (and ``minimax`` for DSTC); rows without pairs keep an empty list."""
    cfg = cfg or PairsConfig()

    def batch_fn(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"pairs": []}
        if cfg.policy == "dstc":
            out["minimax"] = []
        for i in range(len(batch["task_id"])):
            pairs, info = row_pairs({k: v[i] for k, v in batch.items()}, cfg)
            out["pairs"].append([{"chosen": c, "rejected": r, "kind": k} for c, r, k in pairs])
            if cfg.policy == "dstc":
                out["minimax"].append(info)
        return out

    out = ds.map(
        batch_fn,
        batched=True,
        batch_size=64,
        desc=None,
        new_fingerprint=config_fingerprint("pairs", ds._fingerprint, cfg),
    )
    out = out.cast_column("pairs", PAIRS_FEATURE)
    if cfg.policy == "dstc":
        out = out.cast_column("minimax", MINIMAX_FEATURE)
    return with_provenance(out, "pairs", config_to_dict(cfg), base=get_provenance(ds))
