"""Batched vs one-sequence-at-a-time sampling on CPU: generated tokens per second and the ratio.

Same model, prompts and decoding settings for both; only the number of sequences per
``generate`` call differs (``--batch-size`` vs 1). Tokens are real generated tokens (padding
and EOS excluded), so early-finishing sequences in a batch are not counted as work.

    HF_HUB_OFFLINE=1 python benchmarks/sampling.py --problems 4 --n 8 --sequential-samples 2
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--problems", type=int, default=4, help="HumanEval problems (from the start)")
    parser.add_argument("--n", type=int, default=8, help="samples per problem")
    parser.add_argument("--batch-size", type=int, default=32, help="sequences per generate call, batched run")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--sequential-samples",
        type=int,
        default=None,
        help="samples per problem in the sequential run (default: n; fewer saves time, tokens/s is a rate)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of a table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    from codepref.problems import load_problems
    from codepref.sampling import SampleConfig
    from codepref.sampling.backends import GenerationParams, derive_seed, load_backend
    from codepref.sampling.stage import build_request

    rows = load_problems("humaneval", limit=args.problems)
    cfg = SampleConfig(
        model=args.model,
        n=args.n,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
    )
    t0 = time.perf_counter()
    backend = load_backend(cfg)
    load_s = time.perf_counter() - t0
    chat = backend.has_chat_template()
    requests = [build_request(r, cfg, chat=chat) for r in rows]
    prompts = [r[0] for r in requests]
    params = GenerationParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
        stop=requests[0][1],
        stop_at_code_block=requests[0][2],
    )
    seeds = [derive_seed(cfg.seed, r["task_id"]) for r in rows]
    backend.generate(prompts[:1], 1, GenerationParams(max_new_tokens=4), seeds[:1])  # warm-up

    results = {}
    for name, batch, n in (
        ("batched", args.batch_size, args.n),
        ("sequential", 1, args.sequential_samples or args.n),
    ):
        backend.batch_size = batch
        backend.generated_tokens = 0
        t = time.perf_counter()
        outs = backend.generate(prompts, n, params, seeds)
        elapsed = time.perf_counter() - t
        results[name] = {
            "sequences": sum(len(o) for o in outs),
            "tokens": backend.generated_tokens,
            "seconds": round(elapsed, 2),
            "tokens_per_s": round(backend.generated_tokens / elapsed, 2),
        }
    ratio = results["batched"]["tokens_per_s"] / results["sequential"]["tokens_per_s"]
    summary = {
        "model": args.model,
        "load_s": round(load_s, 2),
        "threads": args.threads,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        **results,
        "speedup": round(ratio, 2),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(
        f"model {args.model} (loaded in {load_s:.1f} s), {args.threads} thread(s), "
        f"max_new_tokens {args.max_new_tokens}, chat={chat}"
    )
    for name, r in results.items():
        print(
            f"{name:>10}: {r['sequences']:3d} sequences, {r['tokens']:5d} tokens in {r['seconds']:7.1f} s "
            f"= {r['tokens_per_s']:6.1f} tokens/s"
        )
    print(f"batched / sequential = {ratio:.1f}x")


if __name__ == "__main__":
    main()
