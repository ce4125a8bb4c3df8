"""WorkerPool: one warm sandbox server per slot, each wrapped once in bubblewrap when available.

Each server (``sandbox/inside/server.py``) judges a job with two processes it starts per sample — the
sample's, which only runs the program and answers calls with plain data, and the judge's, which runs the
tests — so no verdict, test, expected value or deadline is ever within the sample's reach.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import queue
import select
import signal
import struct
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import BackendError
from ..sandbox import host
from .config import ExecutionConfig, Isolation, Outcome, SampleResult, TimedResult
from .trust import trust_levels

logger = logging.getLogger(__name__)
_HDR = struct.Struct("<I")
_START_TIMEOUT = 60.0


class SandboxError(BackendError):
    """A fork server could not be started or stopped answering."""


class _Slot:
    """One fork server process and its pipes."""

    def __init__(self, argv: list[str], index: int) -> None:
        self.argv, self.index = argv, index
        self.proc: subprocess.Popen | None = None
        self.hello: dict = {}

    def start(self) -> None:
        self._errlog = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errlog,
            env=dict(host.SAFE_ENV),
            close_fds=True,
            start_new_session=True,
            cwd="/",
        )

    def await_hello(self) -> dict:
        try:
            self.hello = self._recv(_START_TIMEOUT)
        except SandboxError as exc:
            raise SandboxError(f"{exc}; server stderr: {self.stderr_text()[-2000:]}") from None
        return self.hello

    def stderr_text(self) -> str:
        try:
            self._errlog.seek(0)
            return self._errlog.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _recv(self, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout

        def read(n: int) -> bytes:
            buf = bytearray()
            while len(buf) < n:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([fd], [], [], left)[0]:
                    raise SandboxError("fork server did not answer in time")
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    raise SandboxError("fork server exited")
                buf += chunk
            return bytes(buf)

        (length,) = _HDR.unpack(read(_HDR.size))
        return marshal.loads(read(length))

    def call(self, job: dict, timeout: float) -> dict:
        assert self.proc is not None and self.proc.stdin is not None
        data = marshal.dumps(job)
        try:
            os.write(self.proc.stdin.fileno(), _HDR.pack(len(data)))
            view = memoryview(data)
            while view:
                view = view[os.write(self.proc.stdin.fileno(), view) :]
        except (BrokenPipeError, OSError) as exc:
            raise SandboxError(f"fork server is gone: {exc}") from None
        return self._recv(timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc.wait()
        self._errlog.close()
        self.proc = None


class WorkerPool:
    """Warm, isolated workers for running untrusted programs against tests.

    Use as a context manager. ``isolation`` tells which sandbox layers are really active. The local
    implementation of :class:`~codepref.execution.backend.ExecutionBackend`.
    """

    backend = "local"

    def __init__(self, config: ExecutionConfig | None = None, *, counting: bool = False) -> None:
        """``counting=True``: the servers can also count instructions (valgrind; the timing stage)."""
        self.config = config or ExecutionConfig()
        self.counting = counting
        self._tmp_host: str | None = None
        self._slots: list[_Slot] = []
        self._free: queue.Queue[_Slot] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self.isolation = self._start()
        self._executor = ThreadPoolExecutor(max_workers=len(self._slots), thread_name_prefix="codepref-exec")

    # -- start-up ----------------------------------------------------------------------------------
    def _argv(self, index: int, bwrap: str | None) -> list[str]:
        cfg, mode = self.config, self.config.isolation
        sample_uid, judge_uid, untrusted_uid = host.slot_uids(index) if mode != "none" else (None, None, None)
        if bwrap:
            tmp_root, unshare = "/tmp", False
        else:
            if self._tmp_host is None:
                self._tmp_host = tempfile.mkdtemp(prefix="codepref-exec-")
                os.chmod(self._tmp_host, 0o711)
            tmp_root, unshare = self._tmp_host, mode != "none"
        settings = host.SandboxSettings(
            tmp_root=tmp_root,
            sample_uid=sample_uid,
            judge_uid=judge_uid,
            untrusted_uid=untrusted_uid,
            seccomp=mode != "none",
            unshare_net=unshare,
            timeout=float(cfg.timeout),
            cpu_seconds=cfg.cpu_seconds,
            memory_bytes=int(cfg.memory_mb) * 1024 * 1024,
            max_output_bytes=int(cfg.max_output_bytes),
            max_open_files=int(cfg.max_open_files),
            max_processes=int(cfg.max_processes),
            tail_bytes=int(cfg.stderr_tail_bytes),
            in_process=bool(cfg.in_process_tests),
            preimport=host.PREIMPORT,
            extra=self._extra(tmp_root, index),
        )
        jail = settings.extra.get("jail_dir")
        extra = (jail,) if jail else ()
        prefix = host.bwrap_argv(bwrap, tmp_size=512 * 1024 * 1024, extra=extra) if bwrap else []
        return prefix + host.server_argv(settings)

    def _extra(self, tmp_root: str, index: int) -> dict:
        extra: dict = {}
        jail = host.build_jail()
        if jail:
            extra["jail_dir"] = jail
        if self.counting:
            if not jail or not host.find_valgrind():
                raise SandboxError("counting instructions needs valgrind and a C compiler (Debian: valgrind, gcc)")
            extra.update(
                valgrind=host.find_valgrind(),
                valgrind_args=list(host.VALGRIND_ARGS),
                # inside bubblewrap /tmp is the server's own: a fixed path (no pid in what a counted run sees)
                count_dir=os.path.join(tmp_root, "counts" if tmp_root == "/tmp" else f"counts-{os.getpid()}-{index}"),
            )
        return extra

    def _launch(self, bwrap: str | None) -> list[dict]:
        slots = [_Slot(self._argv(i, bwrap), i) for i in range(self.config.n_slots)]
        try:
            for s in slots:
                s.start()
            hellos = [s.await_hello() for s in slots]
        except (SandboxError, OSError):
            for s in slots:
                s.stop()
            raise
        self._slots = slots
        return hellos

    def _start(self) -> Isolation:
        mode = self.config.isolation
        bwrap = host.find_bwrap() if mode in ("auto", "full") else None
        notes: list[str] = []
        if mode in ("auto", "full") and bwrap is None:
            notes.append("bubblewrap unavailable (install the Debian package 'bubblewrap')")
        try:
            hellos = self._launch(bwrap)
        except SandboxError as exc:
            if bwrap is None or mode == "full":
                raise
            notes.append(f"bubblewrap failed to start the server: {exc}")
            bwrap = None
            hellos = self._launch(None)
        for s in self._slots:
            self._free.put(s)
        hello = hellos[0]
        notes += [e for h in hellos for e in h.get("errors", [])][:4]
        layers = list(host.BWRAP_LAYERS) if bwrap else []
        if not bwrap and hello.get("netns"):
            layers.append("netns(unshare)")
        if all(h.get("setuid") for h in hellos):
            layers.append(host.SETUID_LAYER)
        if all(h.get("seccomp") for h in hellos):
            layers.append(host.SECCOMP_LAYER)
        layers += host.ALWAYS_LAYERS
        wanted = list(host.BWRAP_LAYERS) + ["setuid", "seccomp"]
        missing = [w for w in wanted if not any(layer.startswith(w) for layer in layers)]
        if mode == "none":
            level = "none"
        else:
            level = "full" if not missing else "partial"
        iso = Isolation(level=level, layers=tuple(layers), missing=tuple(missing), notes=tuple(notes))
        if missing and mode == "full":
            self.close()
            raise SandboxError(f"isolation='full' but these layers are unavailable: {missing}; {notes}")
        if missing and mode == "auto":
            msg = f"codepref.execution: running with partial isolation, missing {missing}. {'; '.join(notes)}"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            logger.warning(msg)
        logger.info("execution pool: %d slots, isolation %s", len(self._slots), iso.layers)
        return iso

    # -- running -----------------------------------------------------------------------------------
    def _job_timeout(self, job: dict) -> float:
        if job["mode"] in ("time", "interleave"):
            runs = job.get("runs", 1) if job["mode"] == "time" else (job["rounds"] + job.get("warmup", 0))
            cands = job.get("candidates") or [job]
            per_run = sum((len(c.get("units") or c.get("inputs") or []) + 2) for c in cands)
            return runs * per_run * (float(job.get("unit_seconds") or self.config.timeout) + 1.0) * 2 + 180
        return (len(job["units"]) + 1) * (self.config.timeout + 1.0) * 2 + 30

    def _run_one(self, job: dict) -> SampleResult | TimedResult:
        n = len(job["units"]) if "units" in job else 1
        if n == 0 and job["mode"] != "time":
            return SampleResult([], "")
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        slot = self._free.get()
        try:
            for attempt in (1, 2):
                try:
                    reply = slot.call(job, self._job_timeout(job))
                    break
                except SandboxError as exc:
                    logger.warning("fork server %d failed (%s); restarting it", slot.index, exc)
                    slot.stop()
                    slot.start()
                    slot.await_hello()
                    if attempt == 2:
                        if job["mode"] in ("time", "interleave"):
                            return TimedResult([], f"sandbox failure: {exc}", error=str(exc))
                        return SampleResult([int(Outcome.ERROR)] * n, f"sandbox failure: {exc}")
        finally:
            self._free.put(slot)
        if "error" in reply:
            logger.warning("sandbox server error: %s", reply["error"])
            if reply.get("fatal"):  # the server gave up (its zygote is gone): start a fresh one
                with contextlib.suppress(SandboxError, OSError):
                    slot.stop()
                    slot.start()
                    slot.await_hello()
            if job["mode"] in ("time", "interleave"):
                return TimedResult([], f"sandbox error: {reply['error']}", error=str(reply["error"]))
            return SampleResult([int(Outcome.ERROR)] * n, f"sandbox error: {reply['error']}")
        tail = reply["stderr"].decode("utf-8", "replace")
        if job["mode"] in ("time", "interleave"):
            return TimedResult(list(reply["runs"]), tail)
        return SampleResult(list(reply["codes"]), tail)

    def _map(self, jobs: list[dict]) -> list[SampleResult]:
        if len(jobs) == 1:
            return [self._run_one(jobs[0])]
        return list(self._executor.map(self._run_one, jobs))

    @staticmethod
    def assert_job(
        program: str,
        tests: Sequence[str],
        setup: str,
        untrusted: bool = False,
        *,
        entry_point: str | None = None,
        trust: Sequence[str] | None = None,
    ) -> dict:
        """One sample against assert-style tests. ``entry_point``: the function the tests call, taken from
        the sample even where its name is a builtin's (MBPP's ``sum``); ``trust``: per-unit trust levels
        (default: :func:`trust.trust_levels` of the tests); ``untrusted``: model-written tests."""
        tests = list(tests)
        return {
            "mode": "assert",
            "program": program,
            "units": tests,
            "setup": setup or "",
            "untrusted": untrusted,
            "entry_point": entry_point or "",
            "trust": None if untrusted else list(trust or trust_levels(tests, setup or "")),
        }

    @staticmethod
    def timed_job(
        program: str,
        units: Sequence[str] = (),
        setup: str = "",
        *,
        entry_point: str | None = None,
        inputs: Sequence[str] | None = None,
        expected: Sequence[str] | None = None,
        tol: float | None = None,
        runs: int = 1,
        counted: bool = False,
        unit_seconds: float | None = None,
        untrusted: bool = False,
    ) -> dict:
        """``runs`` timed runs of ``program`` (the timing stage): each a fresh sample process that loads the
        program once and answers every unit (or one process per stdin input), every answer checked; its CPU
        time (and, ``counted``, its instruction count) measured by the server. ``unit_seconds``: wall seconds
        per unit (default the pool's timeout; counted runs are ~50x slower). ``untrusted``: model-written
        tests (a judge of their own, as in ``assert_job``)."""
        job = {
            "mode": "time",
            "program": program,
            "units": list(units),
            "setup": setup or "",
            "entry_point": entry_point or "",
            "runs": int(runs),
            "counted": bool(counted),
            "unit_seconds": unit_seconds,
            "untrusted": bool(untrusted),
        }
        if inputs is not None:
            job.update(inputs=list(inputs), expected=list(expected or []), tol=None if tol is None else float(tol))
        return job

    @staticmethod
    def interleave_job(candidates: Sequence[dict], rounds: int, warmup: int = 0) -> dict:
        """Timed runs of several candidates (``timed_job`` dicts) round-robin on one server, who goes first
        rotating every round; per candidate, the list of its runs after ``warmup`` rounds."""
        return {"mode": "interleave", "candidates": list(candidates), "rounds": int(rounds), "warmup": int(warmup)}

    @staticmethod
    def io_job(program: str, inputs: Sequence[str], outputs: Sequence[str], tol: float | None) -> dict:
        if len(inputs) != len(outputs):
            raise ValueError("inputs and outputs differ in length")
        return {
            "mode": "io",
            "program": program,
            "units": list(inputs),
            "expected": list(outputs),
            "tol": None if tol is None else float(tol),
        }

    @property
    def n_slots(self) -> int:
        return len(self._slots)

    def describe(self) -> dict:
        """Nothing beyond ``isolation`` to record for one machine's pool."""
        return {}

    def submit_jobs(self, jobs: Sequence[dict]) -> list[Future]:
        """Start jobs without waiting: one future per job (a :class:`SampleResult` each)."""
        if self._closed:
            raise RuntimeError("WorkerPool is closed")
        return [self._executor.submit(self._run_one, job) for job in jobs]

    def map_jobs(self, jobs: Sequence[dict]) -> list[SampleResult]:
        """Jobs built with :meth:`assert_job` / :meth:`io_job`, in parallel across slots; results in order."""
        return self._map(list(jobs))

    def run_asserts(
        self, program: str, tests: Sequence[str], setup: str = "", *, untrusted: bool = False
    ) -> SampleResult:
        """Run each test unit against ``program`` independently; one code per test.

        The tests run in a judge process with ``setup`` (the problem's imports and trusted helpers) and call
        into the program's process for its values. ``untrusted=True`` (model-written tests) gives every unit
        a judge and a sample process of its own, so one test decides only its own verdict.
        """
        return self._run_one(self.assert_job(program, tests, setup, untrusted))

    def run_io(
        self,
        program: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        float_tolerance: float | None = None,
    ) -> SampleResult:
        """Run ``program`` once per input on stdin; compare stdout token-wise with the expected output."""
        return self._run_one(self.io_job(program, inputs, outputs, float_tolerance))

    def map_asserts(
        self, jobs: Sequence[tuple[str, Sequence[str], str]], *, untrusted: bool = False
    ) -> list[SampleResult]:
        """Many ``(program, tests, setup)`` jobs in parallel across slots; results in input order."""
        return self._map([self.assert_job(p, t, s, untrusted) for p, t, s in jobs])

    def map_io(
        self, jobs: Sequence[tuple[str, Sequence[str], Sequence[str]]], float_tolerance: float | None = None
    ) -> list[SampleResult]:
        """Many ``(program, inputs, outputs)`` jobs in parallel across slots; results in input order."""
        return self._map([self.io_job(p, i, o, float_tolerance) for p, i, o in jobs])

    # -- shutdown ----------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if hasattr(self, "_executor"):
            self._executor.shutdown(wait=True)
        for s in self._slots:
            s.stop()
        if self._tmp_host:
            import shutil

            shutil.rmtree(self._tmp_host, ignore_errors=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()


def exec_matrix(samples: Sequence[str], tests: Sequence[str], setup: str, pool: WorkerPool) -> list[list[int]]:
    """samples x tests outcome codes (one row per sample), computed in parallel on ``pool``."""
    return [r.codes for r in pool.map_asserts([(s, tests, setup) for s in samples])]
