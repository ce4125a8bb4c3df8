"""Collect a finished `make experiment-code-optimise` run into its committed results folder.

    python recipes/code-optimise-experiment/summarise.py RUN_DIR RESULTS_DIR

Copies the comparison reports (tables with intervals, plots, comparison.json) and each evaluation's
metrics.json, and writes ``run.json``: the command, seeds, package versions, hardware, the data's and the
trainings' figures, and the wall time of every step (from RUN_DIR/timeline.tsv, which the Makefile writes).
Nothing here computes a result: it copies and describes what the run wrote.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

COMMAND = "make experiment-code-optimise"


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("codepref", "torch", "transformers", "trl", "datasets", "numpy"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported as such
            out[name] = None
    try:
        out["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["git_commit"] = None
    return out


def hardware() -> dict:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    out = {"cpu": cpu, "cores_available": len(os.sched_getaffinity(0)), "memory_gib": mem, "gpu": None}
    try:
        import torch

        out["bf16_matmul"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return out


def wall_times(run: Path) -> list[dict]:
    """Durations between consecutive ``<iso time>\\t<label>`` lines of timeline.tsv (a label starts a step)."""
    path = run / "timeline.tsv"
    if not path.exists():
        return []
    rows = [line.split("\t", 1) for line in path.read_text().splitlines() if "\t" in line]
    out = []
    for (t0, label), (t1, _) in zip(rows, rows[1:], strict=False):
        if label == "end":
            continue
        seconds = (datetime.fromisoformat(t1) - datetime.fromisoformat(t0)).total_seconds()
        out.append({"step": label, "seconds": round(seconds)})
    return out


def data_figures(run: Path) -> dict:
    from datasets import load_from_disk

    from codepref.stats import dataset_stats

    out = {}
    for stage in ("time", "pairs"):
        path = run / "data" / stage
        if path.exists():
            out[stage] = dataset_stats(load_from_disk(str(path)))
    return out


def training_figures(run: Path) -> dict:
    out = {}
    for arm in ("sft", "dpo"):
        states = sorted((run / arm).glob("checkpoint-*/trainer_state.json"))
        if not states:
            continue
        state = json.loads(states[-1].read_text())
        logs = state.get("log_history", [])
        out[arm] = {
            "global_step": state.get("global_step"),
            "epochs": state.get("epoch"),
            "logged": logs,  # every logging_steps; the wall time is in wall_times
        }
    return out


def main() -> None:
    run, results = Path(sys.argv[1]), Path(sys.argv[2])
    results.mkdir(parents=True, exist_ok=True)
    for task_dir in sorted((run / "report").glob("*")):
        shutil.copytree(task_dir, results / "report" / task_dir.name, dirs_exist_ok=True)
    evals = {}
    for metrics in sorted((run / "eval").glob("*/*/metrics.json")):
        task, arm = metrics.parent.parent.name, metrics.parent.name
        dest = results / "eval" / task / arm / "metrics.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(metrics, dest)
        evals[f"{task}/{arm}"] = json.loads(metrics.read_text())["metrics"].get("pass@k")
    record = {
        "command": COMMAND,
        "seeds": {
            "sampling (data)": "pipeline.yaml sample.seed (default 0; per problem derived from it and task_id)",
            "training": "sft.yaml / dpo.yaml seed 42 (also seeds the per-epoch pair draws)",
            "evaluation sampling": "SampleConfig.seed default 0",
            "bootstrap": "codepref compare --seed default 0, 10,000 resamples",
        },
        "versions": versions(),
        "hardware": hardware(),
        "wall_times": wall_times(run),
        "data": data_figures(run),
        "training": training_figures(run),
        "pass_at_k": evals,
    }
    (results / "run.json").write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {results / 'run.json'} and the reports under {results / 'report'}")


if __name__ == "__main__":
    main()
