"""A pipeline killed with SIGKILL in the middle of execution resumes to the same dataset."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from datasets import Dataset, load_from_disk

SLOW = "import time\ntime.sleep(0.15)\n"


def _samples(path: Path) -> None:
    rows = []
    for i in range(8):
        good = f"def f(x):\n    return x + {i}\n"
        bad = f"def f(x):\n    return x - {i + 1}\n"
        rows.append(
            {
                "task_id": f"p/{i}",
                "tests": [SLOW + f"assert f(1) == {1 + i}", f"assert f(0) == {i}"],
                "test_setup": "",
                "io_tests": None,
                "samples": [good, bad, good, bad],
                "prompt": "def f(x):\n",
                "instruction": "Write f.",
            }
        )
    Dataset.from_list(rows).save_to_disk(str(path))


def _pipeline(tmp: Path, out: str) -> Path:
    doc = {
        "output_dir": str(tmp / out),
        "stages": [
            {"load": {"path": str(tmp / "samples")}},
            {"execute": {"timeout": 5, "shard_size": 1, "slots": 2}},
            {"pairs": {"policy": "code-optimise", "kinds": ["pvf"]}},
        ],
    }
    path = tmp / f"{out}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(pipeline: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "codepref.cli", "run", str(pipeline)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _fingerprint(folder: Path) -> str:
    return json.loads((folder / "state.json").read_text())["_fingerprint"]


def test_sigkill_mid_execution_then_resume(tmp_path):
    _samples(tmp_path / "samples")
    # uninterrupted reference run
    ref = _pipeline(tmp_path, "ref")
    assert _run(ref).wait(timeout=300) == 0
    # interrupted run: SIGKILL the whole process group once some execute shards are on disk
    victim = _pipeline(tmp_path, "run")
    proc = _run(victim)
    partial = tmp_path / "run" / "execute.partial"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list(partial.glob("*/shard-*"))) < 3:
        assert proc.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(partial.glob("*/shard-*")))
    assert 3 <= done_before < 8
    assert not (tmp_path / "run" / "execute").exists()
    # resume: finished shards are reused, the result equals the uninterrupted run
    assert _run(victim).wait(timeout=300) == 0
    for stage in ("execute", "pairs"):
        a, b = load_from_disk(str(tmp_path / "ref" / stage)), load_from_disk(str(tmp_path / "run" / stage))
        assert a.to_list() == b.to_list()
        assert _fingerprint(tmp_path / "ref" / stage) == _fingerprint(tmp_path / "run" / stage)
    assert not partial.exists()  # cleaned up after the stage finished
