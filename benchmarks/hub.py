"""Benchmark: publish and pull a 100,000-row ``samples`` config in the embedded local store.

Synthetic rows in the samples schema (task_id, prompt, completions, samples, exec_matrix
list[list[int8]], passed list[bool]). Prints the time of each step; target ≤ 10 s each on 2 cores.

    python benchmarks/hub.py [--rows 100000] [--n 4] [--tests 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def synthetic_samples(rows: int, n: int, tests: int, seed: int = 0):
    """A samples-stage dataset built column-wise with pyarrow (fast, deterministic)."""
    import numpy as np
    import pyarrow as pa
    from datasets import Dataset, Features, List, Value

    rng = np.random.default_rng(seed)
    ids = np.arange(rows)
    prompt = [
        f'def task_{i}(xs: list[int]) -> int:\n    """Return the sum of the {i % 97} largest items of xs."""\n'
        for i in ids
    ]
    salt = rng.integers(0, 2**63, size=rows * n)  # incompressible bits, so parquet sizes are not flattered
    body = [f"    return sum(sorted(xs)[-{k % 13}:]) + {s % 1000}  # {s:016x}\n" for k, s in enumerate(salt)]
    completions = [f"```python\n{p}{b}```" for p, b in zip(np.repeat(prompt, n), body, strict=True)]
    samples = [p + b for p, b in zip(np.repeat(prompt, n), body, strict=True)]
    codes = rng.choice(np.array([0, 0, 0, 1, 2, 3, 4, 5], dtype=np.int8), size=rows * n * tests)
    per_sample = codes.reshape(rows * n, tests)
    passed = (per_sample == 0).all(axis=1)

    def lists(values: pa.Array, width: int, count: int) -> pa.Array:
        return pa.ListArray.from_arrays(pa.array(np.arange(0, count * width + 1, width, dtype=np.int32)), values)

    inner = lists(pa.array(codes, type=pa.int8()), tests, rows * n)
    table = pa.table(
        {
            "task_id": pa.array([f"synthetic/{i}" for i in ids]),
            "prompt": pa.array(prompt),
            "completions": lists(pa.array(completions), n, rows),
            "samples": lists(pa.array(samples), n, rows),
            "exec_matrix": lists(inner, n, rows),
            "passed": lists(pa.array(passed), n, rows),
        }
    )
    features = Features(
        {
            "task_id": Value("string"),
            "prompt": Value("string"),
            "completions": List(Value("string")),
            "samples": List(Value("string")),
            "exec_matrix": List(List(Value("int8"))),
            "passed": List(Value("bool")),
        }
    )
    return Dataset(table.cast(features.arrow_schema)).cast(features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=4, help="samples per problem")
    parser.add_argument("--tests", type=int, default=3, help="tests per problem")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="codepref-bench-hub-")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(work, "hf-datasets")
    import datasets

    from codepref.hub import LocalStore, publish, pull

    datasets.disable_progress_bars()
    try:
        t = time.perf_counter()
        ds = synthetic_samples(args.rows, args.n, args.tests)
        print(
            f"built {len(ds):,} rows × {args.n} samples ({ds.data.nbytes / 2**20:.0f} MiB in Arrow) "
            f"in {time.perf_counter() - t:.2f} s"
        )
        store = LocalStore(os.path.join(work, "hub"))

        t = time.perf_counter()
        pv = publish(ds, "bench/samples", config="samples", version="v1", store=store)
        t_pub = time.perf_counter() - t
        size = sum(f.stat().st_size for f in (store.repo_dir("bench/samples") / "samples").iterdir())
        print(
            f"publish v1 (parquet shards + card + git commit + tag): {t_pub:.2f} s  "
            f"[{size / 2**20:.0f} MiB parquet, commit {pv.commit[:12]}]"
        )

        t = time.perf_counter()
        got = pull("bench/samples", config="samples", revision="v1", split="train", store=store)
        t_pull = time.perf_counter() - t
        print(f"pull v1, cold (git archive + load_dataset → Arrow cache): {t_pull:.2f} s  [{len(got):,} rows]")

        t = time.perf_counter()
        got = pull("bench/samples", config="samples", revision="v1", split="train", store=store)
        print(f"pull v1, warm (checkout + Arrow cache reused): {time.perf_counter() - t:.2f} s")
        assert len(got) == args.rows and got.features == ds.features
        assert got[12345]["exec_matrix"] == ds[12345]["exec_matrix"]
        verdict = "OK" if max(t_pub, t_pull) <= 10 else "SLOWER THAN TARGET"
        print(f"target ≤ 10 s each: {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
