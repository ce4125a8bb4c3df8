"""Launching the sandboxed timing harness (``_timer.py``), optionally under valgrind/callgrind.

The harness process is started by this launcher — never by a sample — inside the same isolation
as the execution stage's fork servers: bubblewrap (read-only root, private /tmp, hidden home dirs,
new net/pid/ipc/uts namespaces), scrubbed environment; each measured solution then runs in a
forked child with its own session, rlimits, an unprivileged uid and the seccomp filter.
In callgrind mode the command inside bubblewrap is ``valgrind --tool=callgrind ... python _timer.py``;
valgrind follows the harness's forks, so every solution still gets a child process of its own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import re
import select
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import BackendError
from ..execution.config import ExecutionConfig
from ..sandbox import host

logger = logging.getLogger(__name__)
_HDR = struct.Struct("<I")
TIMER_SCRIPT = os.path.join(host.INSIDE_DIR, "timer.py")
CG_DIR = "cg"  # under the harness's tmp root

HELPER_C = r"""
/* codepref timing helper: callgrind client requests callable from Python via ctypes. */
#include <valgrind/callgrind.h>
#include <valgrind/valgrind.h>
void cp_zero(void) { CALLGRIND_ZERO_STATS; }
void cp_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cp_dump(const char *label) { CALLGRIND_DUMP_STATS_AT(label); }
int cp_running(void) { return RUNNING_ON_VALGRIND; }
void cp_instr_on(void) { CALLGRIND_START_INSTRUMENTATION; }
void cp_instr_off(void) { CALLGRIND_STOP_INSTRUMENTATION; }
"""

VALGRIND_ARGS = (
    "--tool=callgrind",
    "--collect-atstart=no",  # count only between the client requests around each measured run
    "--instr-atstart=no",  # start-up and warm-up runs uninstrumented (several times faster)
    "--separate-recs=1",  # one context per function, not per recursion level: ~15% cheaper, same totals
    "--dump-line=no",
    "--dump-instr=no",
    "--compress-strings=no",
    "--trace-children=no",  # forks are followed anyway; exec is forbidden to samples
    "--error-limit=no",
    "-q",
)


# Standard modules the count-mode harness imports before forking (see _timer.preimport).
PREIMPORT = ("typing", "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "operator")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codepref"


@functools.lru_cache(maxsize=1)
def find_valgrind() -> str | None:
    """valgrind's path when it and callgrind.h are usable here, else None."""
    path = shutil.which("valgrind")
    if not path or not os.path.exists("/usr/include/valgrind/callgrind.h") or not shutil.which("gcc"):
        return None
    return path


@functools.lru_cache(maxsize=1)
def valgrind_version() -> str | None:
    path = find_valgrind()
    if not path:
        return None
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


@functools.lru_cache(maxsize=1)
def build_helper() -> str:
    """Compile the callgrind client-request helper once (gcc), cached under ~/.cache/codepref."""
    digest = hashlib.sha256(HELPER_C.encode()).hexdigest()[:12]
    out = cache_dir() / f"cg-helper-{digest}.so"
    if out.exists():
        return str(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src = Path(tmp) / "helper.c"
        src.write_text(HELPER_C)
        so = Path(tmp) / "helper.so"
        proc = subprocess.run(
            ["gcc", "-O2", "-shared", "-fPIC", "-o", str(so), str(src)], capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise BackendError(f"could not compile the callgrind helper: {proc.stderr[-1000:]}")
        os.chmod(so, 0o755)
        os.replace(so, out)
    return str(out)


@functools.lru_cache(maxsize=1)
def perf_counters_available() -> bool:
    """Whether hardware instruction counters work here (``perf stat -e instructions``)."""
    perf = shutil.which("perf")
    if not perf:
        return False
    try:
        proc = subprocess.run(
            [perf, "stat", "-x,", "-e", "instructions:u", "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and bool(re.search(r"^\d+,", proc.stderr, re.M))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or platform.machine()


class Launcher:
    """Starts sandboxed timing-harness processes with one isolation setup (decided once)."""

    def __init__(self, cfg: ExecutionConfig) -> None:
        self.cfg = cfg
        mode = cfg.isolation
        self.bwrap = host.find_bwrap() if mode in ("auto", "full") else None
        if mode == "full" and self.bwrap is None:
            raise BackendError("isolation='full' but bubblewrap is unavailable")
        self.info: dict = {}

    def isolation(self) -> dict:
        layers = list(host.BWRAP_LAYERS) if self.bwrap else []
        if not self.bwrap and self.info.get("netns"):
            layers.append("netns(unshare)")
        if self.cfg.isolation != "none" and os.geteuid() == 0:
            layers.append("setuid(unprivileged uid per child)+nproc-limit")
        if self.info.get("seccomp"):
            layers.append("seccomp(no exec, no inet sockets, no ptrace, no foreign signals)")
        layers += ["rlimits(as,cpu,fsize,nofile,core)", "scrubbed-env", "process-group-kill", "wall-timeout"]
        return {"layers": layers, "bubblewrap": bool(self.bwrap), "errors": self.info.get("errors", [])}

    def run(
        self,
        method: str,
        solutions: list[dict],
        params: dict,
        *,
        slot: int = 0,
        valgrind: bool = False,
        timeout: float = 600.0,
    ) -> list[dict]:
        """Measure ``solutions`` (dicts with id, program, setup, tests|inputs) in one harness process."""
        if not solutions:
            return []
        cfg = self.cfg
        tmp_host = None
        if self.bwrap:
            tmp_root, unshare = "/tmp", False
        else:
            tmp_host = tempfile.mkdtemp(prefix="codepref-time-")
            os.chmod(tmp_host, 0o711)
            tmp_root, unshare = tmp_host, cfg.isolation != "none"
        memory = int(cfg.memory_mb) * 1024 * 1024
        if valgrind and memory:
            memory += 2048 * 1024 * 1024  # valgrind's own address space lives in the same process
        extra: dict = {}
        argv: list[str] = []
        if valgrind:
            extra["helper"] = build_helper()
            extra["cg_dir"] = os.path.join(tmp_root, f"{CG_DIR}-{os.getpid()}-{slot}")
            if not self.bwrap:
                os.makedirs(extra["cg_dir"], exist_ok=True)
        if self.bwrap:
            argv = host.bwrap_argv(
                self.bwrap, tmp_size=256 * 1024 * 1024, extra=(extra["helper"],) if valgrind else ()
            )
            if valgrind:
                argv += ["--dir", extra["cg_dir"]]
        if valgrind:
            argv += [find_valgrind() or "valgrind", *VALGRIND_ARGS, f"--callgrind-out-file={extra['cg_dir']}/%p"]
        settings = host.SandboxSettings(
            tmp_root=tmp_root,
            sample_uid=host.slot_uids(slot)[0] if cfg.isolation != "none" else None,
            seccomp=cfg.isolation != "none",
            unshare_net=unshare,
            timeout=float(cfg.timeout),
            cpu_seconds=cfg.cpu_seconds,
            memory_bytes=memory,
            max_output_bytes=int(cfg.max_output_bytes),
            max_open_files=int(cfg.max_open_files),
            max_processes=int(cfg.max_processes),
            preimport=PREIMPORT if method == "count" else (),
            extra=extra,
        )
        if settings.sample_uid is not None and method == "interleave" and len(solutions) > 60:
            raise BackendError("interleaved timing supports at most 60 candidates per problem")
        argv += host.server_argv(settings, TIMER_SCRIPT)
        job = marshal.dumps({"method": method, "solutions": solutions, "params": params})
        try:
            reply = self._exchange(argv, job, timeout)
        finally:
            if tmp_host:
                shutil.rmtree(tmp_host, ignore_errors=True)
        if "fatal" in reply:
            raise BackendError(f"timing harness failed: {reply['fatal']}")
        self.info = reply.get("info", {})
        return reply["results"]

    def _exchange(self, argv: list[str], job: bytes, timeout: float) -> dict:
        with tempfile.TemporaryFile() as errlog:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errlog,
                env=dict(host.SAFE_ENV),
                close_fds=True,
                start_new_session=True,
                cwd="/",
            )
            try:
                assert proc.stdin is not None and proc.stdout is not None
                try:
                    proc.stdin.write(_HDR.pack(len(job)) + job)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
                data = self._read_all(proc.stdout.fileno(), timeout)
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, 9)
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            if len(data) < _HDR.size or len(data) < _HDR.size + _HDR.unpack_from(data)[0]:
                errlog.seek(0)
                err = errlog.read().decode("utf-8", "replace")[-2000:]
                raise BackendError(f"timing harness gave no result (exit {proc.returncode}); stderr: {err}")
            (n,) = _HDR.unpack_from(data)
            return marshal.loads(data[_HDR.size : _HDR.size + n])

    @staticmethod
    def _read_all(fd: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        buf = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BackendError(f"timing harness did not finish within {timeout:.0f}s")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return bytes(buf)
            buf += chunk
