"""CPU sampling: the old default configuration against the new default, side by side, with pass rates.

Both configurations sample the same problems with the same seeds, decoding settings and stop rules;
only dtype, threads and sequences per call differ. "Useful tokens" are the tokens the samples are
made of (EOS, padding and everything after a stop excluded), so tokens/s is the rate that matters.
Every sample is then extracted and judged by codepref's own ``execute`` (the sandbox), so the pass
rate of each configuration is printed next to its speed: a faster configuration must not be a worse one.

    HF_HUB_OFFLINE=1 python benchmarks/sampling.py                       # the demo's 10 problems, 3 seeds
    HF_HUB_OFFLINE=1 python benchmarks/sampling.py --limit 50 --seeds 0  # HumanEval's first 50 problems
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEMO_TASKS = [7, 22, 27, 28, 29, 30, 34, 42, 45, 53]  # the Makefile's demo problems
CONFIGS = {
    # the default before issue 19: float32 on one thread, 32 sequences per call, transformers' forward (SDPA
    # attention over its DynamicCache)
    "old default (float32, 1 thread, batch 32)": {
        "dtype": "float32",
        "threads": 1,
        "batch_size": 32,
        "forward": "transformers",
    },
    # today's defaults: dtype auto (bf16 where the CPU has it), every core this process may use, 128 per call
    "new default (dtype auto, threads auto, batch 128)": {},
}


def run(problems, config: dict, seed: int, args) -> dict:
    from datasets import Dataset

    from codepref.execution import ExecuteConfig, execute
    from codepref.sampling import SampleConfig, sample
    from codepref.sampling.backends import GenerationParams, load_backend

    config = dict(config)
    forward = config.pop("forward", None)
    cfg = SampleConfig(
        n=args.n, temperature=args.temperature, top_p=0.95, max_new_tokens=args.max_new_tokens, seed=seed, **config
    )
    backend = load_backend(cfg)
    if forward == "transformers":  # the forward pass as it was: transformers' modules, SDPA, DynamicCache
        backend._llama = False
    try:
        # one short call first: a fresh process pays one-time costs (thread pool, kernel set-up) on its first
        # forward pass, the same for both configurations; the figures are the steady sampling rate
        backend.generate(["def f():\n"], 1, GenerationParams(max_new_tokens=4), [0])
        backend.generated_tokens = 0
        t = time.perf_counter()
        ds = sample(problems, cfg, backend=backend)
        seconds = time.perf_counter() - t
        identity = backend.identity()
        tokens = backend.generated_tokens
    finally:
        backend.close()
    judged = execute(Dataset.from_dict(ds.to_dict()), ExecuteConfig(timeout=5.0, tests="ground_truth"))
    passed = sum(sum(p) for p in judged["passed"])
    return {
        "seed": seed,
        "dtype": identity.get("dtype"),
        "threads": identity.get("threads"),
        "batch_size": cfg.batch_size,
        "forward": identity["forward"],
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_s": round(tokens / seconds, 1),
        "passed": passed,
        "samples": sum(len(s) for s in ds["samples"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="HumanEval's first N problems (default: the demo's)")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--json", action="store_true", help="one JSON line per run instead of the table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    from codepref.problems import load_problems

    problems = (
        load_problems("humaneval", limit=args.limit) if args.limit else load_problems("humaneval", task_ids=DEMO_TASKS)
    )
    results: dict[str, list[dict]] = {name: [] for name in CONFIGS}
    for seed in args.seeds:  # interleaved: a machine that slows down mid-run slows both alike
        for name, config in CONFIGS.items():
            r = run(problems, config, seed, args)
            results[name].append(r)
            if args.json:
                print(json.dumps({"config": name, **r}), flush=True)
    if args.json:
        return
    print(
        f"{len(problems)} HumanEval problems x n={args.n}, T={args.temperature}, top-p 0.95, "
        f"{args.max_new_tokens} new tokens, seeds {args.seeds}; {os.cpu_count()} CPUs"
    )
    rates = {}
    for name, runs in results.items():
        tok, sec = sum(r["tokens"] for r in runs), sum(r["seconds"] for r in runs)
        rates[name] = tok / sec
        passes = " / ".join(f"{r['passed']}" for r in runs)
        first = runs[0]
        print(
            f"{name}: {first['dtype']}, {first['threads']} thread(s), batch {first['batch_size']}, "
            f"{first['forward']} forward: "
            f"{rates[name]:7.1f} useful tokens/s ({tok} tokens in {sec:.1f} s); "
            f"passing samples {passes} of {first['samples']} per seed"
        )
    old, new = (rates[name] for name in CONFIGS)
    print(f"new / old = {new / old:.2f}x useful tokens/s")


if __name__ == "__main__":
    main()
