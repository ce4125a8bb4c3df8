"""recipes/code-optimise-experiment/summarise.py: what a finished experiment run leaves in its results folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "code-optimise-experiment" / "summarise.py"


def _load():
    spec = importlib.util.spec_from_file_location("summarise", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wall_times_are_the_gaps_between_step_starts_and_skip_comments(tmp_path):
    (tmp_path / "timeline.tsv").write_text(
        "# a comment line\n"
        "2026-11-30T10:00:00\tdata\n"
        "2026-11-30T10:12:30\ttrain/sft\n"
        "2026-11-30T10:15:00\tend\n"
        "2026-11-30T11:00:00\teval/mbpp/base\n"  # a resumed run: the gap after `end` is not a step
        "2026-11-30T11:01:05\tend\n"
    )
    assert _load().wall_times(tmp_path) == [
        {"step": "data", "seconds": 750},
        {"step": "train/sft", "seconds": 150},
        {"step": "eval/mbpp/base", "seconds": 65},
    ]


def test_summary_copies_reports_and_metrics_and_records_the_run(tmp_path, monkeypatch):
    run, out = tmp_path / "run", tmp_path / "results"
    (run / "report" / "mbpp").mkdir(parents=True)
    (run / "report" / "mbpp" / "report.md").write_text("# report\n")
    for arm, p1 in (("base", 0.1), ("dpo", 0.2)):
        d = run / "eval" / "mbpp" / arm
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"metrics": {"pass@k": {"1": p1}}}))
    module = _load()
    monkeypatch.setattr("sys.argv", ["summarise.py", str(run), str(out)])
    module.main()
    record = json.loads((out / "run.json").read_text())
    assert (out / "report" / "mbpp" / "report.md").read_text() == "# report\n"
    assert (out / "eval" / "mbpp" / "dpo" / "metrics.json").exists()
    assert record["pass_at_k"] == {"mbpp/base": {"1": 0.1}, "mbpp/dpo": {"1": 0.2}}
    assert record["command"] == "make experiment-code-optimise"
    assert record["versions"]["python"] and record["hardware"]["cores_available"] >= 1
    assert record["wall_times"] == [] and record["data"] == {} and record["training"] == {}
