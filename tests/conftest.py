"""Test-wide settings: offline, CPU, one torch thread, deterministic."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

try:  # torch is an optional extra; when present, one thread (2 threads on 2 busy cores is many times slower)
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

import datasets  # noqa: E402

datasets.disable_progress_bars()
