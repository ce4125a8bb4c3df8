from datasets import Dataset

from codepref.pairs import PairsConfig, build_pairs
from codepref.stats import dataset_stats


def test_table1_style_numbers():
    ds = Dataset.from_list(
        [
            {
                "task_id": "a",
                "samples": ["x"] * 4,
                "passed": [True, True, False, True],
                "runtime_ns": [3.0, 1.0, None, 2.0],
                "runtime_cov": [0.01, 0.03, None, 0.02],
            },
            {
                "task_id": "b",
                "samples": ["x"] * 2,
                "passed": [True, False],
                "runtime_ns": [1.0, None],
                "runtime_cov": [0.05, None],
            },
            {
                "task_id": "c",
                "samples": ["x"] * 4,
                "passed": [True, True, True, True],
                "runtime_ns": [1.0, 1.0, 1.0, None],
                "runtime_cov": [0.0, 0.0, 0.0, None],
            },  # the last one never got a stable runtime → counts as failed
        ]
    )
    s = dataset_stats(ds)
    assert s["problems_total"] == 3 and s["solutions_total"] == 10
    assert s["solutions_passing"] == 7 and s["problems_solved"] == 3
    assert s["problems_kept"] == 2 and s["solutions_kept"] == 8  # a and c
    assert s["solutions_ratio"] == 0.8
    assert s["runtime_cov_mean"] == sum([0.01, 0.03, 0.02, 0.05, 0, 0, 0]) / 7
    paired = dataset_stats(build_pairs(ds, PairsConfig(kinds=["pvf"])))
    assert paired["pairs_per_kind"] == {"pvf": 3 + 3}
    assert paired["problems_kept"] == 2


def test_before_execution():
    s = dataset_stats(Dataset.from_list([{"task_id": "a", "samples": ["x", "y"]}]))
    assert s["problems_total"] == 1 and s["solutions_total"] == 2
    assert not {"solutions_passing", "problems_kept", "pairs_total"} & set(s)


def test_an_unstable_runtime_is_a_failure_in_every_view():
    # codepref stats/show and the dataset card read the same numbers (they used to disagree)
    ds = Dataset.from_list(
        [{"task_id": "a", "samples": ["x", "y"], "passed": [True, True], "runtime_ns": [1.0, None]}]
    )
    s = dataset_stats(ds)
    assert s["solutions_passing"] == 1 and s["pass_rate"] == 0.5
