"""The timing stage: mode semantics, test subsets, nulls, determinism, ordering, isolation."""

import os
import uuid

import pytest
from datasets import Dataset

from codepref.errors import ConfigError, DataError
from codepref.pairs import effective_passed
from codepref.provenance import get_provenance
from codepref.timing import TimingConfig, runner, time_samples
from codepref.timing.transform import plan_row

LINEAR = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
QUADRATIC = (
    "def f(n):\n    s = 0\n    for i in range(n):\n        for j in range(n):\n"
    "            if j == 0:\n                s += i\n    return s\n"
)
CLOSED = "def f(n):\n    return n * (n - 1) // 2\n"
WRONG = "def f(n):\n    return 0\n"
TESTS = ["assert f(60) == 1770", "assert f(3) == 3"]

# fast settings for code-optimise semantics
CO_FAST = dict(mode="code-optimise", batch_size=5, max_batches=3, processes=2, cov_threshold=10.0, max_seconds=20)

needs_valgrind = pytest.mark.skipif(runner.find_valgrind() is None, reason="valgrind/gcc not installed")


def _row(samples, passed, tests=TESTS, **extra):
    return {"task_id": "t/sum", "tests": tests, "test_setup": "", "samples": samples, "passed": passed, **extra}


@needs_valgrind
def test_count_mode_deterministic_ordered_and_null_for_failures():
    ds = Dataset.from_list([_row([QUADRATIC, LINEAR, WRONG, CLOSED], [True, True, False, True])])
    cfg = TimingConfig(mode="count", sessions=2, repeats=3)
    a, b = time_samples(ds, cfg), time_samples(ds, cfg)
    ra = a[0]
    assert ra["cost"][2] is None and ra["runtime_ns"][2] is None and ra["timing_stable"][2] is None
    q, lin, closed = ra["cost"][0], ra["cost"][1], ra["cost"][3]
    assert q > 5 * lin > 5 * closed > 0  # O(n^2) > O(n) > O(1)
    assert ra["runtime_ns"][0] > ra["runtime_ns"][1] > ra["runtime_ns"][3] > 0
    for i in (0, 1, 3):  # same counts twice (within 0.5%, or ~1000 instructions of interpreter jitter)
        assert abs(a[0]["cost"][i] - b[0]["cost"][i]) <= max(0.005 * a[0]["cost"][i], 1000)
        assert ra["runtime_cov"][i] < (0.01 if i < 3 else 0.05) and ra["timing_stable"][i] is True
    rec = get_provenance(a)["time"]
    assert rec["mode"] == "count" and rec["valgrind_version"].startswith("valgrind")
    assert "--tool=callgrind" in rec["valgrind_args"] and "typing" in rec["preimported_modules"]
    assert rec["cpu_model"] and rec["python_version"] and rec["ns_per_instruction"] > 0
    assert "seccomp" in " ".join(rec["isolation"]["layers"])
    assert str(a.features["cost"]) == "List(Value('int64'))"


@needs_valgrind
def test_count_mode_warm_up_budget_and_repeats():
    # Every run of this program does more work than the one before (state kept in builtins), so the
    # count says which run was counted: warm-ups stop early only once they used warmup_seconds of CPU.
    drifting = (
        "import builtins\n"
        "builtins.cp_runs = getattr(builtins, 'cp_runs', 0) + 1\n"
        "def f(n):\n    s = 0\n    for i in range(builtins.cp_runs * 3000):\n        s += 1\n"
        "    return n * (n - 1) // 2\n"
    )
    ds = Dataset.from_list([_row([drifting], [True])])
    base = dict(mode="count", sessions=1, calibrate=False, warmup=8)
    all_warm = time_samples(ds, TimingConfig(**base, warmup_seconds=60.0))[0]
    one_warm = time_samples(ds, TimingConfig(**base, warmup_seconds=0.0))[0]
    assert all_warm["cost"][0] > 3 * one_warm["cost"][0]  # counted run 9 (27k iterations) vs run 2 (6k)
    assert all_warm["runtime_cov"][0] == 0.0  # one counted run (the default)
    two = time_samples(ds, TimingConfig(**base, warmup_seconds=60.0, repeats=2))[0]
    assert two["runtime_cov"][0] > 0.01  # runs 9 and 10 differ; their median is the cost
    assert all_warm["cost"][0] < two["cost"][0]


@needs_valgrind
def test_count_mode_calibrates_once_for_all_shards(monkeypatch):
    from codepref.timing import measure

    monkeypatch.setattr(measure, "CALIBRATION_IR", {})
    seen = []
    real_run = runner.Launcher.run

    def spy(self, method, solutions, *args, **kwargs):
        seen.append([s["id"] for s in solutions])
        return real_run(self, method, solutions, *args, **kwargs)

    monkeypatch.setattr(runner.Launcher, "run", spy)
    ds = Dataset.from_list([_row([LINEAR], [True]), _row([QUADRATIC], [True])])
    out = time_samples(ds, TimingConfig(mode="count", sessions=1, shard_size=1, warmup=2))
    assert len(seen) == 2  # one valgrind session per shard
    assert sum(measure.CALIBRATION["id"] in ids for ids in seen) == 1  # calibration measured in the first only
    ns_per_ir = [r["runtime_ns"][0] / r["cost"][0] for r in out]
    assert ns_per_ir[0] == pytest.approx(ns_per_ir[1]) and ns_per_ir[0] > 0


def test_code_optimise_unstable_sample_is_marked_failed():
    # Every other run is 30,000x heavier (state kept in builtins): CoV ~1 in every batch, never stable;
    # the steady sample gets many batches, so a noisy machine cannot make it look unstable.
    noisy = (
        "import builtins\nbuiltins.cp_runs = getattr(builtins, 'cp_runs', 0) + 1\n"
        "def f(n):\n    k = 30000 if builtins.cp_runs % 2 else 1\n    s = 0\n    for i in range(k):\n"
        "        s += 1\n    return n * (n - 1) // 2\n"
    )
    steady = "def f(n):\n    s = 0\n    for i in range(3000):\n        s += i\n    return n * (n - 1) // 2\n"
    ds = Dataset.from_list([_row([noisy, steady, WRONG], [True, True, False])])
    cfg = TimingConfig(**{**CO_FAST, "cov_threshold": 0.5, "batch_size": 20, "max_batches": 30})
    out = time_samples(ds, cfg)[0]
    assert out["runtime_ns"][0] is None and out["timing_stable"][0] is False  # never stable → failed
    assert out["runtime_ns"][1] > 0 and out["timing_stable"][1] is True
    assert out["runtime_ns"][2] is None and out["timing_stable"][2] is None
    ok = effective_passed([True, True, False], [float("nan") if v is None else v for v in out["runtime_ns"]])
    assert ok.tolist() == [False, True, False]


def test_code_optimise_subset_of_tests_is_not_charged_for_slow_test(tmp_path):
    slow_big = "def f(n):\n    s = 0\n    for i in range(n):\n        s += 1\n    return s\n"
    fast = "def f(n):\n    return n\n"
    tests = ["assert f(3) == 3", "assert f(200000) == 200000"]
    row = _row([slow_big, fast], [True, True], tests=tests, credible_tests=[0])
    ds = Dataset.from_list([row])
    cfg = TimingConfig(**{**CO_FAST, "processes": 1})
    full = time_samples(ds, cfg)[0]["runtime_ns"]
    sub = time_samples(ds, TimingConfig(**{**CO_FAST, "processes": 1, "tests": "credible_tests"}))[0]["runtime_ns"]
    assert full[0] > 20 * full[1]  # the big test dominates the loop version
    assert sub[0] < 5 * sub[1]  # ... and is not charged when outside the subset
    call = time_samples(
        ds, TimingConfig(**{**CO_FAST, "processes": 1}), select_tests=lambda r: [0], work_dir=tmp_path
    )[0]["runtime_ns"]
    assert call[0] < 5 * call[1]


def test_credible_tests_from_score_and_gen_exec_matrix():
    row = _row(
        ["p0", "p1", "p2"],
        [True, True, False],
        gen_tests=["g0", "g1", "g2"],
        gen_exec_matrix=[[0, 1, 0], [0, 0, 0], [1, 1, 1]],
        score=[2.0, 1.0, 0.0],
    )
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 1}  # failed samples are not timed
    assert plans[0]["tests"] == ["g0", "g2"] and plans[1]["tests"] == ["g0", "g2"]  # passed by argmax (sample 0)
    plain = plan_row(_row(["a", "b"], [True, True], exec_matrix=[[0, 0], [0, 0]]), 0, TimingConfig(), None)
    assert plain[1]["tests"] == TESTS


def test_credible_tests_without_ground_truth_time_samples_passing_every_credible_test():
    # CodeDPO has no ground-truth tests, hence no `passed`: the credible tests decide who is timed
    row = {
        "task_id": "t/gen",
        "tests": [],
        "samples": ["p0", "p1", "p2"],
        "gen_tests": ["g0", "g1"],
        "gen_exec_matrix": [[0, 0], [0, 1], [0, 0]],
        "score": [1.0, 2.0, 0.5],
    }
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 1, 2}  # top = sample 1 passes g0 only: credible = [g0]
    assert all(p["tests"] == ["g0"] for p in plans.values())
    row["score"] = [2.0, 1.0, 0.5]  # top = sample 0 passes both: sample 1 fails g1 and takes the penalty
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 2} and plans[2]["tests"] == ["g0", "g1"]
    row["gen_exec_matrix"] = [[1, 1], [0, 1], [0, 0]]  # the top sample passes no test: no credible test
    assert plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None) == {}
    sols = [LINEAR, WRONG, CLOSED]
    ds = Dataset.from_list(
        [
            {
                "task_id": "t/gen",
                "tests": [],
                "samples": sols,
                "gen_tests": TESTS,
                "gen_exec_matrix": [[0, 0], [1, 1], [0, 0]],
                "score": [2.0, 0.0, 1.0],
            }
        ]
    )
    out = time_samples(ds, TimingConfig(**{**CO_FAST, "tests": "credible"}))[0]
    assert out["runtime_ns"][0] is not None and out["runtime_ns"][2] is not None
    assert out["runtime_ns"][1] is None and out["timing_stable"][1] is None


def test_bad_input_raises_data_error_naming_row_and_field():
    ds = Dataset.from_list([_row([LINEAR, CLOSED], [True])])
    with pytest.raises(DataError, match=r"task_id 't/sum', field 'passed'"):
        time_samples(ds, TimingConfig(**CO_FAST))
    with pytest.raises(DataError, match="field 'credible_tests'"):
        time_samples(
            Dataset.from_list([_row([LINEAR], [True], credible_tests=[7])]),
            TimingConfig(**{**CO_FAST, "tests": "credible_tests"}),
        )
    with pytest.raises(DataError, match="passed"):
        time_samples(Dataset.from_list([{"task_id": "x", "samples": ["pass"], "tests": []}]), TimingConfig())
    with pytest.raises(ConfigError):
        TimingConfig(mode="fastest")


def test_hostile_sample_cannot_escape_during_timing(tmp_path):
    target = f"/work/main/.codepref-timing-escape-{uuid.uuid4().hex}"
    home_target = os.path.join(os.path.expanduser("~"), f".codepref-escape-{uuid.uuid4().hex}")
    writes = (
        "import os\n"
        f"for p in ({target!r}, {home_target!r}, '/etc/codepref-escape'):\n"
        "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass\n"
        "open('inside_tmp_is_fine.txt', 'w').write('ok')\n" + CLOSED
    )
    sock = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n" + CLOSED
    execs = "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch /tmp/x'])\n" + CLOSED
    ds = Dataset.from_list([_row([writes, sock, execs, CLOSED], [True] * 4)])
    out = time_samples(ds, TimingConfig(**{**CO_FAST, "processes": 1}))[0]
    assert not os.path.exists(target) and not os.path.exists(home_target)
    assert not os.path.exists("/etc/codepref-escape")
    assert out["runtime_ns"][0] is not None  # writing inside its own temp dir is allowed
    assert out["runtime_ns"][1] is None and out["timing_stable"][1] is False  # socket: killed
    assert out["runtime_ns"][2] is None and out["timing_stable"][2] is False  # exec: killed
    assert out["runtime_ns"][3] is not None


@needs_valgrind
def test_count_mode_kills_what_a_sample_leaves_running_before_the_next_sample():
    # The first sample leaves an orphaned process (double fork; setsid is refused by the seccomp filter)
    # that keeps creating a file in the working directory the next child gets; the next sample fails
    # if that file appears. (The uid sweep after a child is skipped when no descendant is left.)
    leaves_daemon = (
        "import builtins, os, time\n"
        "if not getattr(builtins, 'cp_forked', False):\n"
        "    builtins.cp_forked = True\n"
        "    if os.fork() == 0:\n"
        "        if os.fork() == 0:\n"
        "            d, t0 = os.getcwd(), time.time()\n"
        "            while time.time() - t0 < 30:\n"
        "                try:\n                    open(os.path.join(d, 'marker'), 'w').close()\n"
        "                except OSError:\n                    pass\n"
        "                time.sleep(0.002)\n"
        "        os._exit(0)\n" + CLOSED
    )
    checks = "import os, time\ntime.sleep(0.05)\nassert not os.path.exists('marker')\n" + CLOSED
    ds = Dataset.from_list([_row([leaves_daemon, checks, checks], [True] * 3)])
    out = time_samples(ds, TimingConfig(mode="count", sessions=1, calibrate=False, warmup=1))[0]
    assert out["cost"][0] is not None
    assert out["cost"][1] is not None and out["cost"][2] is not None  # nothing of the first one survived


def test_interleaved_mode_ratio_and_resume(tmp_path):
    ds = Dataset.from_list([_row([QUADRATIC, LINEAR, WRONG], [True, True, False])])
    cfg = TimingConfig(mode="interleaved", rounds=5, warmup_rounds=1, turn_ms=1.0, cov_threshold=1.0)
    out = time_samples(ds, cfg, work_dir=tmp_path)
    r = out[0]
    assert r["runtime_ns"][0] > r["runtime_ns"][1] > 0 and r["runtime_ns"][2] is None
    assert r["runtime_ratio"][0] > 1 > r["runtime_ratio"][1]
    again = time_samples(ds, cfg, work_dir=tmp_path)  # resumed from the saved shard: identical
    assert again.to_list() == out.to_list()
    assert get_provenance(out)["time"]["mode"] == "interleaved"
