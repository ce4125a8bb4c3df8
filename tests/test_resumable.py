import pytest
from datasets import Dataset

from codepref import progress
from codepref.resumable import map_in_shards


class Recorder:
    def __init__(self):
        self.events = []

    def start(self, desc, total, completed):
        self.events.append(("start", desc, total, completed))
        return desc

    def advance(self, handle, n):
        self.events.append(("advance", n))

    def finish(self, handle):
        self.events.append(("finish",))


class Interrupted(Exception):
    pass


def square(batch):
    return {"y": [x * x for x in batch["x"]]}


def test_adds_columns_in_order_with_progress():
    ds = Dataset.from_dict({"x": list(range(10))})
    rec = Recorder()
    previous = progress.use_reporter(rec)
    try:
        out = map_in_shards(ds, square, desc="sq", fingerprint="f", shard_size=4, batch_size=3)
    finally:
        progress.use_reporter(previous)
    assert out["x"] == list(range(10)) and out["y"] == [x * x for x in range(10)]
    assert rec.events[0] == ("start", "sq", 10, 0)
    assert sum(e[1] for e in rec.events if e[0] == "advance") == 10


def test_interrupted_run_resumes_without_recomputing(tmp_path):
    ds = Dataset.from_dict({"x": list(range(10))})
    calls = []
    state = {"die": True}

    def flaky(batch):
        calls.extend(batch["x"])
        if 6 in batch["x"] and state["die"]:
            raise Interrupted  # the run dies in the middle of shard 1
        return square(batch)

    with pytest.raises(Interrupted):
        map_in_shards(ds, flaky, desc="sq", fingerprint="f", work_dir=tmp_path, shard_size=4)
    done_before = list(calls)
    calls.clear()
    state["die"] = False
    rec = Recorder()
    previous = progress.use_reporter(rec)
    try:
        out = map_in_shards(ds, flaky, desc="sq", fingerprint="f", work_dir=tmp_path, shard_size=4)
    finally:
        progress.use_reporter(previous)
    assert done_before[:4] == [0, 1, 2, 3]
    assert calls == [4, 5, 6, 7, 8, 9]  # shard 0 was loaded, not recomputed
    assert rec.events[0] == ("start", "sq", 10, 4)  # progress starts at the restored rows
    assert out["y"] == [x * x for x in range(10)]
    assert out.to_list() == map_in_shards(ds, square, desc="sq", fingerprint="g", shard_size=4).to_list()


def test_changed_fingerprint_does_not_reuse_shards(tmp_path):
    ds = Dataset.from_dict({"x": [1, 2]})
    map_in_shards(ds, square, desc="a", fingerprint="v1", work_dir=tmp_path, shard_size=1)
    out = map_in_shards(
        ds, lambda b: {"y": [-x for x in b["x"]]}, desc="a", fingerprint="v2", work_dir=tmp_path, shard_size=1
    )
    assert out["y"] == [-1, -2]


def test_empty_dataset():
    ds = Dataset.from_dict({"x": []})
    assert len(map_in_shards(ds, square, desc="e", fingerprint="f")) == 0
