"""An offline, sandboxed drop-in for 🤗 ``evaluate.load("code_eval")``.

    import evaluate
    from codepref.evaluation import EVALUATE_METRIC

    code_eval = evaluate.load(EVALUATE_METRIC)   # no Hub, no HF_ALLOW_CODE_EVAL
    pass_at_k, results = code_eval.compute(
        references=["assert add(2, 3) == 5"],
        predictions=[["def add(a, b):\\n    return a * b", "def add(a, b):\\n    return a + b"]],
        k=[1, 2],
    )   # {'pass@1': 0.5, 'pass@2': 1.0}

Same inputs and outputs as ``code_eval`` (see :mod:`codepref.evaluation.code_eval`); every candidate
runs in codepref's sandbox and every test program in a judge process the candidate cannot reach.
"""

import datasets
import evaluate

from codepref.evaluation.code_eval import compute_code_eval

_CITATION = """\
@misc{codepref,
  title = {codepref: self-generated, execution-verified preference data for code language models},
  year = {2026}
}
@article{chen2021codex,
  title = {Evaluating Large Language Models Trained on Code},
  author = {Mark Chen and others},
  year = {2021},
  eprint = {2107.03374},
  archivePrefix = {arXiv}
}
"""

_DESCRIPTION = """\
pass@k (Chen et al., 2021, the unbiased estimator) of candidate programs against a test program per problem,
judged in codepref's sandbox: the candidate runs in a confined process without network or files outside its
temporary folder, and the test program in a separate judge process, so a candidate cannot make its test pass.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of candidate programs per problem (list of list of str).
    references: one test program per problem (list of str), e.g. "assert add(2, 3) == 5".
    k: the k values of pass@k (default [1, 10, 100]); a k larger than some problem's candidates is skipped.
    num_workers: sandboxed processes running candidates at once (default 4).
    timeout: seconds per candidate and test program (default 3.0).
Returns:
    pass_at_k: dict "pass@k" -> mean over problems.
    results: dict problem index -> list of (candidate index, {"task_id", "completion_id", "passed", "result"}).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CodeprefCodeEval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("string")), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/codepref/codepref",
            codebase_urls=["https://github.com/codepref/codepref"],
            reference_urls=["https://github.com/openai/human-eval"],
            license="Apache-2.0",
        )

    def _compute(self, predictions, references, k=[1, 10, 100], num_workers=4, timeout=3.0):  # noqa: B006
        return compute_code_eval(predictions, references, k=k, num_workers=num_workers, timeout=timeout)
