"""Names from before issue 17 keep working for one deprecation period: each warns and means the new thing."""

import pytest


def test_flat_eval_options_move_into_the_stage_configs():
    from codepref.evaluation import EvalConfig

    with pytest.warns(FutureWarning, match="EvalConfig"):
        cfg = EvalConfig(model="m", task="humaneval", n=4, max_new_tokens=64, timeout=7.0, timing="count")
    assert (cfg.model, cfg.sampling.n, cfg.sampling.max_new_tokens) == ("m", 4, 64)
    assert cfg.execution.timeout == 7.0 and cfg.timing.mode == "count"
    assert EvalConfig(task="humaneval").sampling.n == 10  # the composed defaults, no warning


def test_execute_all_means_both_and_reward_timeout_means_an_execution_config():
    from codepref.execution import ExecuteConfig
    from codepref.training.rewards import ExecutionReward

    with pytest.warns(FutureWarning, match='tests="both"'):
        assert ExecuteConfig(tests="all").tests == "both"
    with pytest.warns(FutureWarning, match="execution=ExecutionConfig"):
        assert ExecutionReward(timeout=4.0).execution.timeout == 4.0


def test_old_module_names_are_aliases_of_the_stage_modules():
    from codepref.evaluation import runner, stage
    from codepref.execution import stage as execution_stage
    from codepref.execution import transform as execution_transform
    from codepref.timing import stage as timing_stage
    from codepref.timing import transform as timing_transform

    assert runner.evaluate is stage.evaluate
    assert execution_transform.execute is execution_stage.execute
    assert timing_transform.plan_row is timing_stage.plan_row
