"""Timing modes compared: stability (CoV over repeated measurements), cost, and ranking quality.

Usage: python benchmarks/timing.py [--quick] [--repeats R] [--modes count,code-optimise,interleaved]

21 correct solutions of 6 problems with known speed differences (naive / sqrt / sieve / C-builtin
families). Each mode measures the whole set ``--repeats`` times (5; 3 with --quick). Printed per mode:
  * median and max CoV (over the repeated measurements) of each solution's value (cost for count,
    runtime_ratio for interleaved, runtime_ns for code-optimise);
  * seconds per solution (wall time of one measurement of the set / number of solutions);
  * Kendall tau of the mode's ordering (mean value over repeats) against a long reference measurement
    (mean CPU time of a timed run over 10 processes x 300 runs, 6 x 200 with --quick), on pairs that
    differ by >= 10% in the reference: within each problem (what preference pairs use), over all
    solutions, and over all solutions against the reference minus the CPU time of the problem's oracle
    (a program that returns the known answers: the harness's share of a run), which is what count
    measures;
  * how many times cheaper count is than code-optimise per solution.
Then, side by side on real programs: the canonical solutions of the first ``--humaneval`` (20)
HumanEval problems (µs-scale, like most model samples), count vs code-optimise, 2 measurements each:
seconds per solution and the median relative difference between the two measurements.
Targets: count mode median CoV <= 0.01 at <= 1/5 of code-optimise's seconds per solution, tau >= 0.9.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "toolkit"))

import datasets  # noqa: E402
from datasets import Dataset  # noqa: E402

from codepref.timing import TimingConfig, time_samples  # noqa: E402
from codepref.timing.measure import CALIBRATION_IR  # noqa: E402

datasets.disable_progress_bars()

PROBLEMS = {
    "primes": (
        ["assert count_primes(1200) == 196", "assert count_primes(100) == 25"],
        [
            "def count_primes(n):\n    c = 0\n    for k in range(2, n):\n        if all(k % d for d in range(2, k)):\n"
            "            c += 1\n    return c\n",
            "def count_primes(n):\n    c = 0\n    for k in range(2, n):\n        d = 2\n        ok = True\n"
            "        while d * d <= k:\n            if k % d == 0:\n                ok = False\n                break\n"
            "            d += 1\n        c += ok\n    return c\n",
            "def count_primes(n):\n    s = [True] * n\n    s[0:2] = [False, False]\n    for i in range(2, n):\n"
            "        if s[i]:\n            for j in range(i * i, n, i):\n                s[j] = False\n    return sum(s)\n",
            "def count_primes(n):\n    s = bytearray([1]) * n\n    s[0:2] = b'\\x00\\x00'\n"
            "    for i in range(2, int(n ** 0.5) + 1):\n        if s[i]:\n"
            "            s[i * i::i] = bytes(len(range(i * i, n, i)))\n    return sum(s)\n",
        ],
    ),
    "squares": (
        ["assert sum_squares(20000) == 2666466670000", "assert sum_squares(4) == 14"],
        [
            "def sum_squares(n):\n    t = 0\n    for i in range(n):\n        t = t + i ** 2\n    return t\n",
            "def sum_squares(n):\n    return sum(i * i for i in range(n))\n",
            "def sum_squares(n):\n    return sum(map(int.__mul__, range(n), range(n)))\n",
            "def sum_squares(n):\n    return (n - 1) * n * (2 * n - 1) // 6\n",
        ],
    ),
    "fib": (
        ["assert fib(20) == 6765", "assert fib(1) == 1"],
        [
            "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
            "from functools import lru_cache\n@lru_cache(None)\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
            "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
        ],
    ),
    "sort": (
        ["xs = [(i * 7919) % 401 for i in range(400)]\nassert sort_list(xs) == sorted(xs)"],
        [
            "def sort_list(xs):\n    a = list(xs)\n    n = len(a)\n    for i in range(n):\n        for j in range(n - 1 - i):\n"
            "            if a[j] > a[j + 1]:\n                a[j], a[j + 1] = a[j + 1], a[j]\n    return a\n",
            "def sort_list(xs):\n    a = list(xs)\n    for i in range(1, len(a)):\n        k = a[i]\n        j = i - 1\n"
            "        while j >= 0 and a[j] > k:\n            a[j + 1] = a[j]\n            j -= 1\n        a[j + 1] = k\n    return a\n",
            "def sort_list(xs):\n    if len(xs) <= 1:\n        return list(xs)\n    m = len(xs) // 2\n"
            "    l, r = sort_list(xs[:m]), sort_list(xs[m:])\n    out = []\n    i = j = 0\n"
            "    while i < len(l) and j < len(r):\n        if l[i] <= r[j]:\n            out.append(l[i]); i += 1\n"
            "        else:\n            out.append(r[j]); j += 1\n    return out + l[i:] + r[j:]\n",
            "def sort_list(xs):\n    return sorted(xs)\n",
        ],
    ),
    "maxsub": (
        ["xs = [((i * 37) % 23) - 11 for i in range(120)]\nassert max_sub(xs) == 20", "assert max_sub([-1]) == -1"],
        [
            "def max_sub(xs):\n    best = xs[0]\n    for i in range(len(xs)):\n        for j in range(i + 1, len(xs) + 1):\n"
            "            best = max(best, sum(xs[i:j]))\n    return best\n",
            "def max_sub(xs):\n    best = xs[0]\n    for i in range(len(xs)):\n        s = 0\n        for j in range(i, len(xs)):\n"
            "            s += xs[j]\n            best = max(best, s)\n    return best\n",
            "def max_sub(xs):\n    best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n"
            "        best = max(best, cur)\n    return best\n",
        ],
    ),
    "dedupe": (
        ["xs = [(i * 31) % 499 for i in range(1500)]\nassert dedupe(xs) == list(dict.fromkeys(xs))"],
        [
            "def dedupe(xs):\n    out = []\n    for x in xs:\n        if x not in out:\n            out.append(x)\n    return out\n",
            "def dedupe(xs):\n    seen = set()\n    out = []\n    for x in xs:\n        if x not in seen:\n"
            "            seen.add(x)\n            out.append(x)\n    return out\n",
            "def dedupe(xs):\n    return list(dict.fromkeys(xs))\n",
        ],
    ),
}

# Per problem, a program that does no work of its own (it returns the known answers): its CPU time is what
# a run of that problem costs the harness (process, loading, one round trip per call). The reference minus
# it is the program's share, which is what count mode measures.
ORACLES = {
    "primes": "def count_primes(n):\n    return {1200: 196, 100: 25}[n]\n",
    "squares": "def sum_squares(n):\n    return {20000: 2666466670000, 4: 14}[n]\n",
    "fib": "def fib(n):\n    return {20: 6765, 1: 1}[n]\n",
    "sort": "_A = sorted((i * 7919) % 401 for i in range(400))\ndef sort_list(xs):\n    return _A\n",
    "maxsub": "def max_sub(xs):\n    return 20 if len(xs) > 1 else -1\n",
    "dedupe": "_A = list(dict.fromkeys((i * 31) % 499 for i in range(1500)))\ndef dedupe(xs):\n    return _A\n",
}


def dataset(oracles: bool = False) -> Dataset:
    rows = []
    for name, (tests, sols) in PROBLEMS.items():
        sols = [ORACLES[name]] if oracles else sols
        rows.append(
            {
                "task_id": f"bench/{name}",
                "tests": tests,
                "test_setup": "",
                "samples": sols,
                "passed": [True] * len(sols),
            }
        )
    return Dataset.from_list(rows)


def values(out: Dataset, key: str) -> list[list[float | None]]:
    return [list(r[key]) for r in out]


def measure(ds: Dataset, cfg: TimingConfig, key: str) -> tuple[list[list[float | None]], float]:
    CALIBRATION_IR.clear()  # every measurement pays for count mode's calibration run, as a fresh process does
    t0 = time.monotonic()
    out = time_samples(ds, cfg)
    return values(out, key), time.monotonic() - t0


def kendall(a: list[float], b: list[float], pairs: list[tuple[int, int]]) -> float:
    conc = disc = 0
    for i, j in pairs:
        s = (a[i] - a[j]) * (b[i] - b[j])
        conc += s > 0
        disc += s < 0
    return (conc - disc) / max(1, conc + disc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats, shorter reference")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--modes", default="count,code-optimise,interleaved")
    ap.add_argument("--humaneval", type=int, default=20, help="HumanEval canonical solutions to compare (0: skip)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    repeats = args.repeats or (3 if args.quick else 5)
    ds = dataset()
    groups = [len(s) for _, s in PROBLEMS.values()]
    n_sol = sum(groups)
    flat_index = []
    for p, g in enumerate(groups):
        flat_index += [(p, i) for i in range(g)]

    def flat(v: list[list]) -> list:
        return [v[p][i] for p, i in flat_index]

    print(f"{n_sol} solutions of {len(groups)} problems; {repeats} repeated measurements per mode", flush=True)
    # The reference is long and ungated: a CoV gate (Algorithm 1) leaves half the solutions without a
    # value on a shared VM, which would leave too few pairs to rank. Mean CPU time over every run.
    ref_cfg = TimingConfig(
        mode="code-optimise",
        processes=6 if args.quick else 10,
        batch_size=200 if args.quick else 300,
        cov_threshold=1e9,
        max_batches=1,
    )
    ref_v, ref_s = measure(ds, ref_cfg, "runtime_ns")
    ref = flat(ref_v)
    if any(r is None for r in ref):
        print("reference measurement unstable for some solutions:", ref)
    print(f"reference: {ref_s:.1f} s ({ref_s / n_sol:.2f} s/solution)", flush=True)
    harness = [v[0] for v in measure(dataset(oracles=True), ref_cfg, "runtime_ns")[0]]
    work = [max(1.0, ref[k] - harness[flat_index[k][0]]) if ref[k] else None for k in range(n_sol)]
    print("harness share of a run (oracle programs), µs: " + ", ".join(f"{h / 1e3:.0f}" for h in harness))
    within = [
        (a, b)
        for a in range(n_sol)
        for b in range(a + 1, n_sol)
        if flat_index[a][0] == flat_index[b][0]
        and ref[a]
        and ref[b]
        and max(ref[a], ref[b]) >= 1.1 * min(ref[a], ref[b])
    ]
    overall = [
        (a, b)
        for a in range(n_sol)
        for b in range(a + 1, n_sol)
        if ref[a] and ref[b] and max(ref[a], ref[b]) >= 1.1 * min(ref[a], ref[b])
    ]
    overall_work = [
        (a, b)
        for a in range(n_sol)
        for b in range(a + 1, n_sol)
        if work[a] and work[b] and max(work[a], work[b]) >= 1.1 * min(work[a], work[b])
    ]
    modes = {
        "count": (TimingConfig(mode="count"), "cost"),
        "code-optimise": (TimingConfig(mode="code-optimise"), "runtime_ns"),
        "interleaved": (TimingConfig(mode="interleaved"), "runtime_ratio"),
    }
    rows = []
    for mode in args.modes.split(","):
        cfg, key = modes[mode]
        runs, secs = [], []
        for _ in range(repeats):
            v, s = measure(ds, cfg, key)
            runs.append(flat(v))
            secs.append(s)
        covs, means, nulls = [], [], 0
        for k in range(n_sol):
            xs = [r[k] for r in runs if r[k] is not None]
            nulls += len(xs) < repeats
            means.append(statistics.mean(xs) if xs else float("nan"))
            if len(xs) >= 2:  # (a count of 0, below the harness's resolution, repeats exactly: CoV 0)
                mean = statistics.mean(xs)
                covs.append(statistics.pstdev(xs) / mean if mean else 0.0)
        rank = means if key != "runtime_ratio" else flat(values(time_samples(ds, cfg), "runtime_ns"))
        tau_w = kendall(means, ref, within)
        tau_o = kendall(rank, ref, overall) if key != "runtime_ratio" else float("nan")
        tau_p = kendall(rank, work, overall_work) if key != "runtime_ratio" else float("nan")
        sps = statistics.mean(secs) / n_sol
        rows.append((mode, statistics.median(covs), max(covs), sps, tau_w, tau_o, tau_p, nulls))
        print(
            f"{mode:14s} median CoV {rows[-1][1]:.4f}  max CoV {rows[-1][2]:.4f}  {sps:.3f} s/solution  "
            f"tau(within problems, {len(within)} pairs) {tau_w:.3f}  tau(all, {len(overall)} pairs) {tau_o:.3f}  "
            f"tau(all vs the program's share, {len(overall_work)} pairs) {tau_p:.3f}  solutions with a null {nulls}",
            flush=True,
        )
    secs_per_sol = {r[0]: r[3] for r in rows}
    if "count" in secs_per_sol and "code-optimise" in secs_per_sol:
        ratio = secs_per_sol["code-optimise"] / secs_per_sol["count"]
        print(f"count is {ratio:.1f}x cheaper than code-optimise per solution (target >= 5x)")
    print(
        "\n| mode | median CoV | max CoV | s/solution | tau within problems | tau all | tau all (program's share) | nulls |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for mode, med, mx, sps, tw, to, tp, nulls in rows:
        print(f"| {mode} | {med:.4f} | {mx:.4f} | {sps:.3f} | {tw:.3f} | {to:.3f} | {tp:.3f} | {nulls} |")
    if args.humaneval:
        humaneval(args.humaneval)


def humaneval(n: int) -> None:
    """count vs code-optimise on HumanEval canonical solutions: what most real samples look like."""
    from codepref.problems import ProblemsConfig, load_problems

    probs = load_problems(ProblemsConfig(source="humaneval", limit=n))
    ds = Dataset.from_list(
        [
            {
                "task_id": r["task_id"],
                "tests": r["tests"],
                "test_setup": r["test_setup"],
                "samples": [r["prompt"] + r["canonical_solution"]],
                "passed": [True],
            }
            for r in probs
        ]
    )
    print(f"\nHumanEval canonical solutions ({n}), 2 measurements per mode:")
    secs: dict[str, float] = {}
    for mode, key in (("count", "cost"), ("code-optimise", "runtime_ns")):
        runs, spent = [], []
        for _ in range(2):
            v, s = measure(ds, TimingConfig(mode=mode), key)
            runs.append([x[0] for x in v])
            spent.append(s)
        both = [(a, b) for a, b in zip(*runs, strict=True) if a is not None and b is not None]
        diff = statistics.median(abs(a - b) / max(a, b, 1) for a, b in both) if both else float("nan")
        secs[mode] = statistics.mean(spent) / n
        med = statistics.median(a for a, _ in both) if both else float("nan")
        print(
            f"{mode:14s} {secs[mode]:.3f} s/solution  median value {med:,.0f}  "
            f"median difference between the 2 measurements {diff:.1%}  nulls {n - len(both)}",
            flush=True,
        )
    print(f"cost ratio code-optimise / count on these: {secs['code-optimise'] / secs['count']:.2f}")


if __name__ == "__main__":
    main()
