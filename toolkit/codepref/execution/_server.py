"""The fork server: a small warm interpreter that forks one confined child per sample (or per resumed run).

Run as a script (``python -s -B _server.py <hex of marshalled settings>``), usually inside bubblewrap.
Protocol on fds 0/1 (moved away at start so no child inherits them): 4-byte little-endian length +
``marshal`` payload.
The first message it writes is a hello dict naming the layers it could activate.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import sys

# Modules forked children get for free. Every MiB in this process costs fork time (~0.1 ms/MiB here),
# so inside bubblewrap (stdlib readable after setuid) only the common ones are loaded; without it the
# stdlib may be unreadable by the sandbox uid (e.g. under /root), so a broad set is loaded.
_LEAN = (
    "typing",
    "re",
    "math",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "string",
    "operator",
    "copy",
)
_BROAD = _LEAN + (
    "abc", "array", "base64", "binascii", "calendar", "cmath", "collections.abc", "contextlib", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "enum", "fractions", "hashlib", "io", "json", "numbers",
    "pprint", "queue", "random", "statistics", "struct", "textwrap", "time", "unicodedata", "types", "zlib",
)  # fmt: skip

SETTINGS: dict = marshal.loads(bytes.fromhex(sys.argv[1])) if __name__ == "__main__" else {}


def _preimport(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        with contextlib.suppress(ImportError):  # optional stdlib module missing on this build
            importlib.import_module(name)


_preimport(_BROAD if SETTINGS.get("preimport") == "broad" else _LEAN)

import ctypes  # noqa: E402
import select  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import time  # noqa: E402

import _harness  # noqa: E402
import _seccomp  # noqa: E402
import compare  # noqa: E402

PASS, FAIL, ERROR, TIMEOUT, SYNTAX, KILLED = range(6)
_HDR = struct.Struct("<I")
_NONCE_LEN = 16
_FRAME = _NONCE_LEN + _harness.VERDICT.size
_PR_SET_CHILD_SUBREAPER = 36
_CLONE_NEWNET = 0x40000000


def _read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def _send(fd: int, obj: object) -> None:
    data = marshal.dumps(obj)
    view = memoryview(_HDR.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


class Server:
    """One slot: runs jobs sequentially, each sample in freshly forked, confined children."""

    def __init__(self, settings: dict, rfd: int, wfd: int) -> None:
        self.s = settings
        self.rfd, self.wfd = rfd, wfd
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.uid = settings.get("uid")
        self.tmp_root = settings["tmp_root"]
        self.filter = None
        self.hello: dict = {
            "pid": os.getpid(),
            "seccomp": False,
            "setuid": False,
            "netns": False,
            "errors": [],
        }
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if settings.get("unshare_net"):
            if libc.unshare(_CLONE_NEWNET) == 0:
                self.hello["netns"] = True
            else:
                self.hello["errors"].append(f"unshare(CLONE_NEWNET) failed: errno {ctypes.get_errno()}")
        if settings.get("seccomp"):
            try:
                self.filter = _seccomp.compile_filter()
            except Exception as exc:  # noqa: BLE001
                self.hello["errors"].append(f"seccomp: {exc}")
        self._probe()
        self.workdir = os.path.join(self.tmp_root, f"cp{os.getpid()}")
        os.environ["HOME"] = os.environ["TMPDIR"] = self.workdir  # inherited by every child

    def _probe(self) -> None:
        """Confirm the per-child layers really work here: setuid and seccomp loading in a forked child."""
        for layer in ("setuid", "seccomp"):
            if (layer == "setuid" and self.uid is None) or (layer == "seccomp" and self.filter is None):
                continue
            pid = os.fork()
            if pid == 0:
                try:
                    if layer == "setuid":
                        os.setgroups([])
                        os.setgid(self.uid)
                        os.setuid(self.uid)
                    else:
                        self.filter.load(os.getpid())
                        try:
                            os.setsid()
                            os._exit(3)  # the filter must refuse setsid
                        except PermissionError:
                            pass
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(2)
            _, status = os.waitpid(pid, 0)
            ok = os.waitstatus_to_exitcode(status) == 0
            self.hello[layer] = ok
            if not ok:
                self.hello["errors"].append(f"{layer} probe failed (status {status})")
                if layer == "setuid":
                    self.uid = None
                else:
                    self.filter = None

    # -- one child -------------------------------------------------------------------------------
    def _spawn(self, job: dict, start: int, stdin_data: str | None) -> dict:
        s = self.s
        tmpdir = self._workdir()
        out_fd = os.memfd_create("stdout", 0)
        err_fd = os.memfd_create("stderr", 0)
        if stdin_data is None:
            in_fd = os.dup(self.devnull)
        else:
            in_fd = os.memfd_create("stdin", 0)
            os.write(in_fd, stdin_data.encode("utf-8", "surrogateescape"))
            os.lseek(in_fd, 0, os.SEEK_SET)
        vr, vw = os.pipe()
        nonce = os.urandom(_NONCE_LEN)
        n_units = len(job["units"]) - start if job["mode"] == "assert" else 1
        cpu = s["cpu_seconds"]
        spec = {
            "mode": job["mode"],
            "program": job["program"],
            "setup": job.get("setup", ""),
            "units": job["units"],
            "start": start,
            "stdin_fd": in_fd,
            "stdout_fd": out_fd,
            "stderr_fd": err_fd,
            "verdict_fd": vw,
            "nonce": nonce,
            "tmpdir": tmpdir,
            "uid": self.uid,
            "cpu_seconds": cpu,
            "cpu_hard": cpu * (n_units + 1) + 2,
            "memory_bytes": s["memory_bytes"],
            "max_output_bytes": s["max_output_bytes"],
            "max_open_files": s["max_open_files"],
            "max_processes": s["max_processes"],
        }
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.close(vr)
                _harness.child_main(spec, self.filter)
            finally:
                os._exit(70)
        os.close(vw)
        os.close(in_fd)
        try:
            res = self._supervise(pid, vr, nonce, start)
        finally:
            os.close(vr)
        res["stdout"] = os.pread(out_fd, s["max_output_bytes"] + 1, 0) if job["mode"] == "io" else b""
        size = os.fstat(err_fd).st_size
        res["stderr"] = os.pread(err_fd, s["tail_bytes"], max(0, size - s["tail_bytes"]))
        os.close(out_fd)
        os.close(err_fd)
        return res

    def _workdir(self) -> str:
        """The slot's scratch dir (the sample's cwd), emptied when the previous sample left anything."""
        tmpdir = self.workdir
        if os.path.isdir(tmpdir) and os.listdir(tmpdir):
            shutil.rmtree(tmpdir, ignore_errors=True)
        if not os.path.isdir(tmpdir):
            os.mkdir(tmpdir, 0o700)
        os.chmod(tmpdir, 0o700)
        if self.uid is not None:
            os.chown(tmpdir, self.uid, self.uid)
        return tmpdir

    def _supervise(self, pid: int, vr: int, nonce: bytes, start: int) -> dict:
        timeout = self.s["timeout"]
        verdicts: dict[int, int] = {}
        buf = b""
        deadline = time.monotonic() + timeout
        pidfd = os.pidfd_open(pid)
        watch = [vr, pidfd]
        timed_out = False
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                ready, _, _ = select.select(watch, [], [], left)
                if vr in ready:
                    data = os.read(vr, 65536)
                    if not data:
                        watch.remove(vr)
                    else:
                        buf, got = self._parse(buf + data, nonce, verdicts)
                        if got:
                            deadline = time.monotonic() + timeout
                if pidfd in ready:
                    break
        finally:
            os.close(pidfd)
        self._kill_tree(pid)
        _, status, ru = os.wait4(pid, 0)
        if vr in watch:  # verdicts written just before exit
            while select.select([vr], [], [], 0)[0]:
                data = os.read(vr, 65536)
                if not data:
                    break
                buf, _ = self._parse(buf + data, nonce, verdicts)
        self._reap_all()
        cpu_used = ru.ru_utime + ru.ru_stime
        return {
            "verdicts": verdicts,
            "death": self._death_code(status, timed_out, cpu_used),
            "status": status,
        }

    @staticmethod
    def _parse(buf: bytes, nonce: bytes, verdicts: dict[int, int]) -> tuple[bytes, bool]:
        got = False
        while True:
            at = buf.find(nonce)
            if at < 0:
                return buf[-(_FRAME - 1) :], got
            if len(buf) - at < _FRAME:
                return buf[at:], got
            idx, code = _harness.VERDICT.unpack_from(buf, at + _NONCE_LEN)
            if code <= KILLED and idx not in verdicts:
                verdicts[idx] = code
                got = True
            buf = buf[at + _FRAME :]

    def _death_code(self, status: int, timed_out: bool, cpu_used: float) -> int:
        if timed_out:
            return TIMEOUT
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_used >= self.s["cpu_seconds"]):
                return TIMEOUT
            if sig in (signal.SIGXFSZ, signal.SIGSYS, signal.SIGKILL):
                return KILLED
            return ERROR
        return ERROR

    def _kill_tree(self, pid: int) -> None:
        for target in (-pid, pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)

    def _reap_all(self) -> None:
        """Reap every orphan (this process is a subreaper); sweep the slot's uid if something escaped."""
        t0 = time.monotonic()
        swept = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                continue
            elapsed = time.monotonic() - t0
            if elapsed > 0.05 and not swept and self.uid is not None:
                self._sweep_uid()
                swept = True
            if elapsed > 5:
                return
            time.sleep(0.001)

    def _sweep_uid(self) -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.setgid(self.uid)
                os.setuid(self.uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)

    # -- jobs --------------------------------------------------------------------------------------
    def run_asserts(self, job: dict) -> tuple[list[int], bytes]:
        n = len(job["units"])
        codes: list[int | None] = [None] * n
        tails: list[bytes] = []
        start, program_ok = 0, False
        while start < n:
            res = self._spawn(job, start, None)
            tails.append(res["stderr"])
            v = res["verdicts"]
            if not program_ok:
                prog = v.get(_harness.PROGRAM, None if start == 0 else PASS)
                if prog is None or prog != PASS:
                    code = res["death"] if prog is None else prog
                    return [code] * n, b"".join(tails)
                program_ok = True
            i = start
            while i < n and i in v:
                codes[i] = v[i]
                i += 1
            if i < n:
                codes[i] = res["death"]
                i += 1
            start = i
        return [ERROR if c is None else c for c in codes], b"".join(tails)

    def run_io(self, job: dict) -> tuple[list[int], bytes]:
        codes: list[int] = []
        tails: list[bytes] = []
        expected, tol = job["expected"], job.get("tol")
        for k, stdin_data in enumerate(job["units"]):
            res = self._spawn(job, k, stdin_data)
            tails.append(res["stderr"])
            code = res["verdicts"].get(0)
            if code is None:
                clean_exit = os.WIFEXITED(res["status"]) and os.WEXITSTATUS(res["status"]) == 0
                code = PASS if clean_exit and res["death"] != TIMEOUT else res["death"]
            if code == PASS and len(res["stdout"]) > self.s["max_output_bytes"]:
                code = KILLED
            if code == PASS:
                out = res["stdout"].decode("utf-8", "replace")
                code = PASS if compare.outputs_match(out, expected[k], tol) else FAIL
            if code == SYNTAX:
                return [SYNTAX] * len(job["units"]), b"".join(tails)
            codes.append(code)
        return codes, b"".join(tails)

    def serve(self) -> None:
        _send(self.wfd, self.hello)
        while True:
            try:
                (length,) = _HDR.unpack(_read_exact(self.rfd, _HDR.size))
                job = marshal.loads(_read_exact(self.rfd, length))
            except EOFError:
                return
            try:
                codes, tail = (self.run_io if job["mode"] == "io" else self.run_asserts)(job)
                reply = {"codes": codes, "stderr": tail[-self.s["tail_bytes"] :]}
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            _send(self.wfd, reply)


def main() -> None:
    settings = SETTINGS
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.pop("PWD", None)  # bubblewrap sets it; keep the environment minimal
    del sys.path[0]  # this package's directory must not shadow user imports
    server = Server(settings, rfd, wfd)
    _harness.install_stdio()  # the server never writes to them; children inherit them empty
    import gc

    gc.collect()
    gc.freeze()
    server.serve()


if __name__ == "__main__":
    main()
