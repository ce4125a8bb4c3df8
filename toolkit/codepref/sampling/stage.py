"""The sampling stage: problems → ``completions`` / ``samples`` (and ``gen_tests``) (SPEC §3, §4.2).

Determinism: every generate call is seeded from ``cfg.seed`` and the task ids it serves, and
calls never span a shard, so a run resumed from a ``work_dir`` yields exactly the columns of
an uninterrupted run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from datasets import Dataset, List, Value

from ..config import config_fingerprint, config_to_dict
from ..errors import DataError
from ..resumable import require_columns, run_sharded_stage
from .backends import GenerationBackend, GenerationParams, derive_seed, load_backend
from .config import SampleConfig
from .extraction import COMPLETION_STOPS, MBPP_STOPS, extract_code, fenced_blocks
from .prompts import (
    DSTC_STOP,
    Prompt,
    code_prompt,
    codedpo_test_prompt,
    dstc_prompt,
    is_code_prompt,
    parse_test_units,
    split_sections,
)

logger = logging.getLogger(__name__)


def output_columns(cfg: SampleConfig) -> list[str]:
    """The columns ``sample`` adds for ``cfg``."""
    if cfg.target == "code":
        return ["completions", "samples"]
    if cfg.test_prompt == "dstc":
        return ["completions", "samples", "gen_tests"]
    return ["test_completions", "gen_tests"]


def _check_rows(ds: Dataset, *, chat: bool) -> None:
    """Raise DataError naming the row, task_id and field of the first row sampling cannot use."""
    cols = [c for c in ("task_id", "prompt", "instruction", "entry_point") if c in ds.column_names]
    for index, values in enumerate(zip(*(ds[c] for c in cols), strict=True)):
        _check_row(dict(zip(cols, values, strict=True)), index, chat=chat)


def _check_row(row: Mapping[str, Any], index: int, *, chat: bool) -> None:
    tid = row.get("task_id")
    if not isinstance(tid, str) or not tid:
        raise DataError(f"must be a non-empty string, got {tid!r}", field="task_id", row=index)
    for name in ("prompt", "instruction", "entry_point"):
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(f"must be a string, got {type(value).__name__}", task_id=tid, field=name, row=index)
    needed = "instruction" if chat else "prompt"
    if not (row.get(needed) or (chat and row.get("prompt"))):
        raise DataError(
            f"is empty; {'chat' if chat else 'completion'} sampling needs it",
            task_id=tid,
            field=needed,
            row=index,
        )


def build_request(row: Mapping[str, Any], cfg: SampleConfig, *, chat: bool) -> tuple[Prompt, tuple[str, ...], bool]:
    """(prompt, stop strings, stop at closed code block) for one problem."""
    if cfg.target == "code":
        prompt = code_prompt(row, chat=chat, system_prompt=cfg.system_prompt)
        stops: tuple[str, ...] = (
            () if chat else (COMPLETION_STOPS if is_code_prompt(row["prompt"], row.get("entry_point")) else MBPP_STOPS)
        )
        fence = chat
    elif cfg.test_prompt == "codedpo":
        prompt = codedpo_test_prompt(row, chat=chat)
        stops, fence = ((), True) if chat else (("\ndef ", "\nclass ", "\n\n\n", "\n```"), False)
    else:
        prompt = dstc_prompt(row, chat=chat)
        stops, fence = DSTC_STOP, False
    if cfg.stop is not None:
        stops = tuple(cfg.stop)
    if cfg.stop_at_code_block is not None:
        fence = cfg.stop_at_code_block and chat
    return prompt, stops, fence


def _parse_row(row: Mapping[str, Any], texts: list[str], cfg: SampleConfig, chat: bool) -> dict[str, list]:
    prompt, entry = row.get("prompt") or "", row.get("entry_point")
    if cfg.target == "code":
        return {
            "completions": texts,
            "samples": [extract_code(t, prompt=prompt, entry_point=entry, chat=chat) for t in texts],
        }
    if cfg.test_prompt == "codedpo":
        tests: list[str] = []
        for t in texts:
            source = t if chat else "assert " + t
            tests += parse_test_units(source, entry_point=entry)
        return {"test_completions": texts, "gen_tests": _dedupe(tests, cfg.max_gen_tests)}
    samples, tests = [], []
    for t in texts:  # DSTC: [Implementation] → code, [Tests] → tests
        parts = split_sections(t)
        impl = parts.get("implementation", t)
        samples.append(extract_code(impl, prompt=prompt, entry_point=entry, chat=True))
        test_text = parts.get("tests", "")
        blocks = fenced_blocks(test_text)
        tests += parse_test_units("\n".join(blocks) if blocks else test_text, entry_point=entry)
    return {"completions": texts, "samples": samples, "gen_tests": _dedupe(tests, cfg.max_gen_tests)}


def _dedupe(units: list[str], limit: int) -> list[str]:
    return list(dict.fromkeys(units))[:limit]


def sample(
    ds: Dataset,
    cfg: SampleConfig,
    *,
    backend: GenerationBackend | None = None,
    work_dir: str | os.PathLike | None = None,
) -> Dataset:
    """Sample ``cfg.n`` completions per problem and extract programs (and tests, for ``target="tests"``).

    Adds ``completions`` + ``samples`` (target code), ``test_completions`` + ``gen_tests``
    (CodeDPO tests) or ``completions`` + ``samples`` + ``gen_tests`` (DSTC). With ``work_dir``
    finished shards are kept and a rerun resumes. ``backend`` overrides the one ``cfg`` names
    (tests pass a tiny model this way).
    """
    require_columns(ds, ("task_id", "prompt"), "load problems first")
    own = backend is None
    backend = backend if backend is not None else load_backend(cfg)
    try:
        chat = cfg.chat_mode if cfg.chat_mode is not None else backend.has_chat_template()
        logger.info(
            "sampling %d problems × %d with %s (chat=%s, target=%s)",
            len(ds),
            cfg.n,
            backend.identity(),
            chat,
            cfg.target,
        )
        _check_rows(ds, chat=chat)
        fingerprint = config_fingerprint(config_to_dict(cfg), backend.identity(), {"chat": chat, "v": 1})
        replaced = [c for c in output_columns(cfg) if c in ds.column_names]
        if replaced:
            logger.warning("sample: replacing existing columns %s", replaced)

        def fn(batch: dict[str, list]) -> dict[str, list]:
            rows = [{k: batch[k][i] for k in batch} for i in range(len(batch["task_id"]))]
            requests = [build_request(row, cfg, chat=chat) for row in rows]
            texts: list[list[str]] = []
            start = 0
            while start < len(rows):  # consecutive rows with the same stops share generate calls
                end = start + 1
                while end < len(rows) and requests[end][1:] == requests[start][1:]:
                    end += 1
                _, stops, fence = requests[start]
                params = GenerationParams(
                    temperature=cfg.temperature,
                    top_p=cfg.top_p,
                    max_new_tokens=cfg.max_new_tokens,
                    stop=stops,
                    stop_at_code_block=fence,
                )
                seeds = [derive_seed(cfg.seed, row["task_id"]) for row in rows[start:end]]
                texts += backend.generate([r[0] for r in requests[start:end]], cfg.n, params, seeds)
                start = end
            out: dict[str, list] = {c: [] for c in output_columns(cfg)}
            for row, row_texts in zip(rows, texts, strict=True):
                if len(row_texts) != cfg.n:
                    raise DataError(
                        f"backend returned {len(row_texts)} completions, expected {cfg.n}",
                        task_id=row["task_id"],
                        field="completions",
                    )
                for key, value in _parse_row(row, row_texts, cfg, chat).items():
                    out[key].append(value)
            return out

        def record() -> dict:
            entry = {**config_to_dict(cfg), **backend.identity(), "chat": chat}
            entry.pop("api_key_env", None)
            return entry

        return run_sharded_stage(
            ds,
            fn,
            step="sample" if cfg.target == "code" else "sample_tests",
            desc=f"sample {cfg.target}",
            features={c: List(Value("string")) for c in output_columns(cfg)},
            fingerprint=fingerprint,
            record=record,
            work_dir=work_dir,
            shard_size=cfg.shard_size,
        )
    finally:
        if own:
            backend.close()
