"""The Ray backend of ``execute``: same output as the local backend, resumable, recorded in provenance."""

import sys

import pytest
from datasets import Dataset

ray = pytest.importorskip("ray")

from codepref.errors import BackendError, ConfigError  # noqa: E402
from codepref.execution import ExecuteConfig, Outcome, WorkerPool, execute  # noqa: E402
from codepref.execution.ray_backend import RayPool, import_ray  # noqa: E402
from codepref.provenance import get_provenance  # noqa: E402

P, F, T, S = (int(o) for o in (Outcome.PASS, Outcome.FAIL, Outcome.TIMEOUT, Outcome.SYNTAX))
LOOP = "def add(a, b):\n    while True:\n        pass\n"


def _rows() -> list[dict]:
    rows = []
    for k in range(3):  # several shards and chunks, so order and resume are exercised
        rows.append(
            {
                "task_id": f"t/add{k}",
                "tests": [f"assert add({k}, 2) == {k + 2}", "assert add(-1, 1) == 0"],
                "test_setup": "",
                "io_tests": None,
                "gen_tests": ["assert add(0, 0) == 0"],
                "samples": [
                    "def add(a, b):\n    return a + b\n",
                    "def add(a, b):\n    return a - b\n",  # fails
                    "def add(a, b)\n    return a + b\n",  # syntax error
                    LOOP if k == 0 else "def add(a, b):\n    return b + a\n",  # times out (first row only)
                ],
                "completions": ["x"] * 4,  # a column execution does not read
            }
        )
        rows.append(
            {
                "task_id": f"t/double{k}",
                "tests": [],
                "test_setup": "",
                "io_tests": {"input": ["2\n", f"{k + 5}\n"], "output": ["4\n", f"{2 * (k + 5)}\n"]},
                "gen_tests": [],
                "samples": [
                    "print(int(input()) * 2)\n",
                    "print(int(input()) + 2)\n",  # passes 2 -> 4 only
                    "print(int(input()) * 2\n",  # syntax error
                    "while True:\n    pass\n" if k == 0 else "print(2 * int(input()))\n",
                ],
                "completions": ["y"] * 4,
            }
        )
    return rows


CFG = {"timeout": 1.0, "slots": 2, "shard_size": 2}


@pytest.fixture(scope="module")
def cluster():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def local():
    with WorkerPool(ExecuteConfig(**CFG)) as pool:
        yield execute(Dataset.from_list(_rows()), ExecuteConfig(**CFG), pool=pool), pool


@pytest.fixture(scope="module")
def ray_pool(cluster):
    with RayPool(ExecuteConfig(**CFG, backend="ray")) as pool:
        yield pool


def test_same_output_as_local(cluster, local):
    expected, _ = local
    out = execute(Dataset.from_list(_rows()), ExecuteConfig(**CFG, backend="ray"))  # its own RayPool
    assert out.column_names == expected.column_names
    assert out.features == expected.features
    assert str(out.features["exec_matrix"]) == "List(List(Value('int8')))"
    assert out.to_list() == expected.to_list()
    a, b = out[0], out[1]
    assert a["exec_matrix"] == [[P, P], [F, F], [S, S], [T, T]] and a["passed"] == [True, False, False, False]
    assert a["gen_exec_matrix"] == [[P], [P], [S], [T]]
    assert b["exec_matrix"] == [[P, P], [P, F], [S, S], [T, T]] and b["passed"] == [True, False, False, False]
    assert [r["task_id"] for r in out] == [r["task_id"] for r in _rows()]
    record = get_provenance(out)["execute"]
    assert record["backend"] == "ray"
    assert record["ray_cluster"]["nodes"] == 1 and record["ray_cluster"]["cpus"] == 2
    assert record["ray_cluster"]["workers"] == 1 and record["ray_cluster"]["slots"] == 2
    assert record["isolation"] == get_provenance(expected)["execute"]["isolation"]
    assert get_provenance(expected)["execute"]["backend"] == "local"


def test_reused_pool_and_ground_truth_only(ray_pool, local):
    _, local_pool = local
    cfg = ExecuteConfig(**CFG, backend="ray", tests="ground_truth")
    out = execute(Dataset.from_list(_rows()[1:4]), cfg, pool=ray_pool)
    want = execute(Dataset.from_list(_rows()[1:4]), ExecuteConfig(**CFG, tests="ground_truth"), pool=local_pool)
    assert "gen_exec_matrix" not in out.column_names
    assert out.to_list() == want.to_list()


def test_interrupted_run_resumes_without_redoing_shards(ray_pool, local, tmp_path, monkeypatch):
    expected, local_pool = local
    cfg = ExecuteConfig(**CFG, backend="ray")  # 6 rows, shard_size 2 -> 3 shards
    real_save = Dataset.save_to_disk
    saves: list[str] = []

    def killed_after_first_shard(self, path, *args, **kwargs):
        if saves:
            raise KeyboardInterrupt  # the run dies while saving its second shard
        saves.append(path)
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(Dataset, "save_to_disk", killed_after_first_shard)
    with pytest.raises(KeyboardInterrupt):
        execute(Dataset.from_list(_rows()), cfg, pool=ray_pool, work_dir=tmp_path)
    monkeypatch.setattr(Dataset, "save_to_disk", real_save)

    submitted: list[dict] = []
    real_submit = RayPool.submit_jobs

    def counting(self, jobs):
        submitted.extend(jobs)
        return real_submit(self, jobs)

    monkeypatch.setattr(RayPool, "submit_jobs", counting)
    resumed = execute(Dataset.from_list(_rows()), cfg, pool=ray_pool, work_dir=tmp_path)
    # only the two unfinished shards ran: rows 2..5, one job per sample for the tests and one for gen_tests
    assert len(submitted) == sum(2 * len(r["samples"]) for r in _rows()[2:])
    assert resumed.to_list() == expected.to_list()
    # the shards are shared with the local backend (the backend is not part of the shard key)
    monkeypatch.setattr(local_pool, "submit_jobs", lambda *a, **k: pytest.fail("re-executed a finished shard"))
    again = execute(Dataset.from_list(_rows()), ExecuteConfig(**CFG), pool=local_pool, work_dir=tmp_path)
    assert again.to_list() == expected.to_list()


def test_config_and_missing_ray_errors(ray_pool, local, monkeypatch):
    with pytest.raises(ConfigError, match="backend must be local or ray"):
        ExecuteConfig(backend="spark")
    ds = Dataset.from_list(_rows()[:1])
    with pytest.raises(ConfigError, match="does not match the pool"):
        execute(ds, ExecuteConfig(**CFG), pool=ray_pool)
    with pytest.raises(ConfigError, match="does not match the pool"):
        execute(ds, ExecuteConfig(**CFG, backend="ray"), pool=local[1])
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(BackendError, match="codepref\\[ray\\]"):
        import_ray()
    with pytest.raises(BackendError, match="needs Ray"):
        execute(ds, ExecuteConfig(**CFG, backend="ray"))
