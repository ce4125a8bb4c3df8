"""From index pairs to TRL's dataset formats (the only place rows are flattened).

Formats (TRL conventions, standard or conversational):

- ``preference`` — ``prompt/chosen/rejected``, one row per pair (DPO, ORPO, CPO);
- ``reward`` — the same rows, for TRL's RewardTrainer (Bradley–Terry);
- ``kto`` — unpaired ``prompt/completion/label`` (each sample once: desirable if it is
  the chosen side of some pair, else undesirable);
- ``sft`` — ``prompt/completion``: the top-N% fastest passing samples of the problems Code-Optimise's
  filter keeps (>= 2 passing, >= 1 failing; SFT_N);
- ``candidates`` — one row per problem with every response, every valid pair and the SFT
  pool, so a recipe can re-draw a pair (or a solution) per problem per epoch
  (Code-Optimise §3.4).

The prompt is the one the samples were generated from (rebuilt from the row and the sampling
provenance); the response is the text the model should learn to produce: the raw completion
(a completion model's continuation, or a chat model's assistant message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from datasets import Dataset

from .errors import ConfigError, DataError
from .pairs import effective_passed, keep_problem, top_fastest
from .provenance import get_provenance, with_provenance
from .ranking import row_seed

FORMATS = ("preference", "reward", "kto", "sft", "candidates")
EMPTY_COLUMNS = {  # the columns of each format, for an export with no rows
    "preference": ("task_id", "prompt", "chosen", "rejected", "kind"),
    "reward": ("task_id", "prompt", "chosen", "rejected", "kind"),
    "kto": ("task_id", "prompt", "completion", "label"),
    "sft": ("task_id", "prompt", "completion"),
    "candidates": ("task_id", "prompt", "responses", "pairs", "sft"),
}
# DSTC §3 Component II: code and test concatenated into one response, in the four-part format
# the DSTC prompt asks for (the paper's exact template was lost in the text extraction).
DSTC_TEMPLATE = "[Implementation]\n```python\n{code}\n```\n\n[Tests]\n```python\n{test}\n```"


@dataclass
class ExportConfig:
    """Which TRL format to write, and how to build prompts and responses."""

    format: Literal["preference", "reward", "kto", "sft", "candidates"] = field(
        default="preference", metadata={"help": "preference | reward | kto | sft | candidates"}
    )
    style: Literal["auto", "standard", "conversational"] = field(
        default="auto",
        metadata={
            "help": "conversational = chat messages; auto = conversational when samples came from a chat template"
        },
    )
    response: Literal["completion", "program"] = field(
        default="completion",
        metadata={"help": "completion = the raw model output; program = the extracted program (fenced for chat)"},
    )
    kinds: list[str] | None = field(default=None, metadata={"help": "Keep only pairs of these kinds"})
    max_pairs_per_problem: int | None = field(
        default=None, metadata={"help": "Keep at most this many pairs per problem (seeded draw); default all"}
    )
    top_percent: float = field(default=25.0, metadata={"help": "sft/candidates: top N% fastest passing samples"})
    min_passing: int = field(
        default=2,
        metadata={"help": "sft/candidates: Code-Optimise's problem filter — at least this many passing samples"},
    )
    min_failing: int = field(
        default=1, metadata={"help": "sft/candidates: Code-Optimise's problem filter — at least this many failing"}
    )
    seed: int = field(default=0, metadata={"help": "Seed for pair draws"})

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")
        if self.style not in ("auto", "standard", "conversational"):
            raise ConfigError(f"style must be auto, standard or conversational, got {self.style!r}")
        if self.response not in ("completion", "program"):
            raise ConfigError(f"response must be completion or program, got {self.response!r}")
        if not 0 < self.top_percent <= 100:
            raise ConfigError(f"top_percent must be in (0, 100], got {self.top_percent}")
        if self.max_pairs_per_problem is not None and self.max_pairs_per_problem < 1:
            raise ConfigError("max_pairs_per_problem must be >= 1")
        if self.min_passing < 0 or self.min_failing < 0:
            raise ConfigError("min_passing and min_failing must be >= 0")


class _Builder:
    """Prompts and responses of one dataset, consistent with how it was sampled."""

    def __init__(self, ds: Dataset, cfg: ExportConfig) -> None:
        prov = get_provenance(ds)
        sample = prov.get("sample", {})
        self.sampled_chat = bool(sample.get("chat", "instruction" in ds.column_names))
        self.conversational = cfg.style == "conversational" or (cfg.style == "auto" and self.sampled_chat)
        self.test_prompt = sample.get("test_prompt") if sample.get("target") == "tests" else None
        self.dstc = "minimax" in ds.column_names
        self.system_prompt = sample.get("system_prompt")
        self.pair_tests = prov.get("pairs", {}).get("tests")
        self.cfg = cfg

    def prompt(self, row: dict) -> Any:
        from .sampling.prompts import code_prompt, dstc_training_prompt

        if self.dstc:  # DSTC §3: the instruction alone, entry point and generation scaffold removed
            p = dstc_training_prompt(row, chat=self.sampled_chat)
        else:
            p = code_prompt(row, chat=self.sampled_chat, system_prompt=self.system_prompt)
        if isinstance(p, list):  # chat messages; drop a pre-filled assistant turn (it starts the response)
            p = [m for m in p if m["role"] != "assistant"]
            if self.conversational:
                return p
            return "\n\n".join(m["content"] for m in p)
        return [{"role": "user", "content": p}] if self.conversational else p

    def text(self, row: dict, i: int) -> str:
        if self.cfg.response == "program" or not row.get("completions"):
            program = row["samples"][i]
            return f"```python\n{program.rstrip()}\n```" if self.sampled_chat else program
        return row["completions"][i]

    def dstc_text(self, row: dict, code: int, test: int) -> str:
        source = self.pair_tests or ("generated" if row.get("gen_tests") is not None else "ground_truth")
        tests = {
            "generated": row.get("gen_tests") or [],
            "ground_truth": row["tests"],
            "both": list(row["tests"]) + list(row.get("gen_tests") or []),
        }[source]
        return DSTC_TEMPLATE.format(code=row["samples"][code].rstrip(), test=tests[test].rstrip())

    def wrap(self, text: str) -> Any:
        return [{"role": "assistant", "content": text}] if self.conversational else text


def _row_pairs(row: dict, cfg: ExportConfig) -> list[dict]:
    pairs = row.get("pairs") or []
    if cfg.kinds is not None:
        pairs = [p for p in pairs if p["kind"] in cfg.kinds]
    if cfg.max_pairs_per_problem is not None and len(pairs) > cfg.max_pairs_per_problem:
        rng = np.random.default_rng(row_seed(cfg.seed, row["task_id"]))
        keep = np.sort(rng.choice(len(pairs), cfg.max_pairs_per_problem, replace=False))
        pairs = [pairs[k] for k in keep]
    return pairs


def _responses(b: _Builder, row: dict, pair: dict) -> tuple[str, str]:
    if b.dstc and pair["kind"] == "dstc":
        mm = row["minimax"]
        return (
            b.dstc_text(row, mm["chosen_code"], mm["chosen_test"]),
            b.dstc_text(row, mm["rejected_code"], mm["rejected_test"]),
        )
    return b.text(row, pair["chosen"]), b.text(row, pair["rejected"])


def _runtime(row: dict) -> np.ndarray | None:
    values = row.get("runtime_ns")
    return None if values is None else np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def sft_pool(row: dict, cfg: ExportConfig) -> list[int]:
    """Code-Optimise SFT_N (§3.2–3.3): the top N% fastest working solutions of a *filtered* problem.

    "we only keep problems with at least two passing and one failing solution" applies to the SFT
    data as to the pairs; a passing sample without a stable runtime counts as failed (§3.2).
    """
    passed = np.asarray(row.get("passed") or [], bool)
    runtime = _runtime(row)
    if not keep_problem(effective_passed(passed, runtime), cfg.min_passing, cfg.min_failing):
        return []
    return top_fastest(passed, runtime, cfg.top_percent)


def export(ds: Dataset, cfg: ExportConfig | None = None) -> Dataset:
    """Flatten a paired dataset into the TRL format ``cfg.format`` (see the module docstring)."""
    cfg = cfg or ExportConfig()
    need = {"preference": "pairs", "reward": "pairs", "kto": "pairs", "candidates": "pairs", "sft": "passed"}
    if need[cfg.format] not in ds.column_names:
        raise DataError(
            f"export --format {cfg.format} needs the {need[cfg.format]!r} column (columns: {ds.column_names})",
            field=need[cfg.format],
        )
    b = _Builder(ds, cfg)
    rows: list[dict] = []
    for row in ds:
        if cfg.format == "sft":
            prompt = b.prompt(row)
            for i in sft_pool(row, cfg):
                rows.append({"task_id": row["task_id"], "prompt": prompt, "completion": b.wrap(b.text(row, i))})
            continue
        pairs = _row_pairs(row, cfg)
        if cfg.format == "candidates":
            if not pairs:
                continue
            sft = sft_pool(row, cfg) if "passed" in row else []
            responses = [b.wrap(b.text(row, i)) for i in range(len(row["samples"]))]
            if b.dstc:
                responses = [b.wrap(t) for p in pairs for t in _responses(b, row, p)]
                pairs = [{"chosen": 2 * k, "rejected": 2 * k + 1, "kind": p["kind"]} for k, p in enumerate(pairs)]
            rows.append(
                {
                    "task_id": row["task_id"],
                    "prompt": b.prompt(row),
                    "responses": responses,
                    "pairs": pairs,
                    "sft": sft,
                }
            )
            continue
        if cfg.format == "kto" and b.dstc:
            # DSTC §3: "For KTO, we only filter out the data without feasible chosen responses": the
            # concatenated chosen response is desirable, the rejected one (when feasible) undesirable
            mm = row["minimax"]
            if mm["chosen_code"] is None:
                continue
            labelled = [(b.dstc_text(row, mm["chosen_code"], mm["chosen_test"]), True)]
            if mm["rejected_code"] is not None:
                labelled.append((b.dstc_text(row, mm["rejected_code"], mm["rejected_test"]), False))
            rows += [
                {"task_id": row["task_id"], "prompt": b.prompt(row), "completion": b.wrap(t), "label": label}
                for t, label in labelled
            ]
            continue
        if not pairs:
            continue
        prompt = b.prompt(row)
        if cfg.format == "kto":  # each sample once: desirable if it is the chosen side of some pair
            good = list(dict.fromkeys(p["chosen"] for p in pairs))
            bad = [i for i in dict.fromkeys(p["rejected"] for p in pairs) if i not in set(good)]
            labelled = [(b.text(row, i), True) for i in good] + [(b.text(row, i), False) for i in bad]
            rows += [
                {"task_id": row["task_id"], "prompt": prompt, "completion": b.wrap(t), "label": label}
                for t, label in labelled
            ]
            continue
        for p in pairs:
            chosen, rejected = _responses(b, row, p)
            rows.append(
                {
                    "task_id": row["task_id"],
                    "prompt": prompt,
                    "chosen": b.wrap(chosen),
                    "rejected": b.wrap(rejected),
                    "kind": p["kind"],
                }
            )
    out = Dataset.from_list(rows) if rows else Dataset.from_dict({c: [] for c in EMPTY_COLUMNS[cfg.format]})
    record = {
        "format": cfg.format,
        "style": "conversational" if b.conversational else "standard",
        "response": cfg.response,
        "rows": len(out),
    }
    return with_provenance(out, "export", record, base=get_provenance(ds))
