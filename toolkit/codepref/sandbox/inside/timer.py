"""Sandboxed timing harness: measures many solutions, each in its own confined child process.

Standalone on purpose (standard library and its sibling modules only): launched as a script, usually as
``bwrap ... [valgrind --tool=callgrind ...] python -s -B timer.py <SandboxSettings hex>``, with the job
(``wire.send_obj`` framing) on stdin and the results (same framing) on stdout.

Every solution runs in a freshly forked child confined exactly like an execution-stage sample
(``confine.confine``: own session/process group, rlimits, unprivileged uid, seccomp filter forbidding
exec/inet sockets/ptrace/foreign signals/IPC, stdio on memfds). The parent (trusted,
never runs sample code) supervises with a wall-clock deadline, kills the process group, sweeps the
uid, and, in callgrind mode, reads the child's counter dumps and wipes the dump directory before
the next child starts, so a sample can only ever influence its own measurement.

Methods:
  * ``cpu``        Code-Optimise Algorithm 1 in one process: batches of ``batch`` runs of the whole
                   check program, CPU time (``process_time_ns``), until CoV <= threshold, at most
                   ``max_batches`` batches; reports the last batch's mean and CoV.
  * ``count``      callgrind instruction counts: ``warmup`` uncounted runs, then ``repeats`` runs each
                   bracketed by client requests (zero, toggle collect, run, toggle, dump).
  * ``interleave`` all candidates of a problem alive at once (one child and one uid each); rounds
                   run each candidate once in turn and record its CPU time.
"""

from __future__ import annotations

import contextlib  # noqa: E402
import ctypes  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import marshal
import os
import select  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys
import time  # noqa: E402
import types  # noqa: E402

if __name__ == "__main__":
    del sys.path[0]  # this directory must not shadow user imports
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import confine  # noqa: E402
import sample  # noqa: E402
import wire  # noqa: E402
from settings import SandboxSettings  # noqa: E402

_HDR = wire.HDR
_NONCE = 16
_CHANNEL_FD = 3


# -- child side: the measured program ---------------------------------------------------------------
def _compile(src: str, name: str) -> types.CodeType:
    return compile(src, name, "exec", dont_inherit=True, optimize=0)


def _make_runner(sol: dict):
    """A zero-argument function running the whole check program once (definition + every unit)."""
    prog = _compile(sol["program"], "<solution>")
    setup = _compile(sol.get("setup") or "", "<setup>")
    tests = [_compile(t, f"<test {i}>") for i, t in enumerate(sol.get("tests") or [])]
    inputs = sol.get("inputs")
    fresh = sample.fresh_module

    if inputs is not None:  # stdin/stdout problem: the program once per input

        def run_io() -> None:
            for text in inputs:
                sys.stdin = io.StringIO(text)
                sys.stdout = io.StringIO()
                try:
                    exec(prog, fresh("__main__"))
                except SystemExit as exc:
                    if exc.code not in (None, 0):
                        raise RuntimeError(f"SystemExit({exc.code!r})") from None

        return run_io

    def run() -> None:
        ns = fresh("solution")
        exec(prog, ns)
        exec(setup, ns)
        for t in tests:
            exec(t, ns)

    return run


def _frame_writer(fd: int, nonce: bytes):
    """``emit(obj)`` sends one framed message now; ``emit.prepare(obj)`` frames it now and returns a
    function that sends it later (count mode's last message is framed before instrumentation starts,
    so marshal's code is not re-translated under callgrind for it)."""
    pid, write, pack, dumps = os.getpid(), os.write, _HDR.pack, marshal.dumps

    def prepare(obj: object):
        data = dumps(obj)
        frame = nonce + pack(len(data)) + data

        def send() -> None:
            if os.getpid() != pid:
                os._exit(0)
            view = memoryview(frame)
            while view:
                view = view[write(fd, view) :]

        return send

    def emit(obj: object) -> None:
        prepare(obj)()

    emit.prepare = prepare
    return emit


def _child_cpu(run, p: dict, emit) -> None:
    pt, mono = time.process_time_ns, time.monotonic
    deadline = mono() + p["budget"]
    batch, thr, max_batches = p["batch"], p["threshold"], p["max_batches"]
    mean = cov = float("nan")
    stable, b = False, 0
    for b in range(1, max_batches + 1):  # noqa: B007 - Algorithm 1: times reset every batch
        times = []
        for _ in range(batch):
            t0 = pt()
            run()
            times.append(pt() - t0)
        mean = sum(times) / len(times)
        var = sum((t - mean) ** 2 for t in times) / len(times)  # numpy std (ddof=0), as the paper's code
        cov = (var**0.5) / mean if mean > 0 else float("inf")
        if cov <= thr:
            stable = True
            break
        if mono() > deadline:
            break
    emit({"stable": stable, "mean": float(mean), "cov": float(cov), "batches": b})


def _child_count(run, p: dict, emit, helper) -> None:
    # Warm-up runs: uninstrumented (fast), same bracket as a counted run (warms the ctypes paths too).
    # After at least one, they stop once they have used ``warmup_ns`` of CPU time: a heavy program's
    # loops are specialised during its first run, and only µs-scale programs need all of them.
    pt, spent = time.process_time_ns, 0
    for _ in range(p["warmup"]):
        t0 = pt()
        gc.collect()
        helper.cp_zero()
        helper.cp_toggle()
        run()
        helper.cp_toggle()
        spent += pt() - t0
        if spent >= p["warmup_ns"]:
            break
    # Everything run after instrumentation starts is re-translated with instrumentation (slow), so
    # the first collection and the final message are prepared before it.
    send_done = emit.prepare({"done": True})
    labels = [b"cp:%d" % k for k in range(p["repeats"])]
    gc.collect()
    helper.cp_instr_on()  # flushes valgrind's translations; re-translation is not counted (guest Ir only)
    for k in range(p["repeats"]):
        if k:
            gc.collect()
        helper.cp_zero()
        helper.cp_toggle()
        run()
        helper.cp_toggle()
        helper.cp_dump(labels[k])
    send_done()


def _child_interleave(run, p: dict, emit, sock_fd: int) -> None:
    """One turn per b"g": ``loops`` runs (fixed after the first turn so a turn lasts >= turn_ns)."""
    pt = time.process_time_ns
    emit({"ready": True})
    loops = 0
    while True:
        cmd = os.read(sock_fd, 1)
        if cmd != b"g":
            os._exit(0)
        gc.collect()
        if loops == 0:  # first turn: find how many runs make a turn long enough to time
            loops, t0 = 1, pt()
            run()
            while pt() - t0 < p["turn_ns"] and loops < 1 << 20:
                for _ in range(loops):
                    run()
                loops *= 2
            emit({"ns": (pt() - t0) // loops, "loops": loops})
            continue
        t0 = pt()
        for _ in range(loops):
            run()
        emit({"ns": (pt() - t0) // loops})


def _child(sol: dict, method: str, p: dict, confinement: dict, flt, helper) -> None:
    """Runs in the forked child; never returns."""
    nonce = confinement.pop("nonce")
    try:
        confine.confine(seccomp_filter=flt, **confinement)
    except BaseException:  # noqa: BLE001 - no sandbox, no run
        os._exit(71)
    fd = _CHANNEL_FD
    emit = _frame_writer(fd, nonce)
    try:
        run = _make_runner(sol)
    except BaseException as exc:  # noqa: BLE001
        emit({"error": f"compile: {type(exc).__name__}: {exc}"})
        os._exit(0)
    gc.collect()
    gc.freeze()  # later collections only scan what the sample allocates (cheap, and the same every run)
    try:
        if method == "cpu":
            _child_cpu(run, p, emit)
        elif method == "count":
            _child_count(run, p, emit, helper)
        else:
            _child_interleave(run, p, emit, fd)
    except BaseException as exc:  # noqa: BLE001
        with contextlib.suppress(BaseException):
            emit({"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    os._exit(0)


# -- parent side --------------------------------------------------------------------------------------
class Child:
    """A confined child measuring one solution, and the parent's end of its channel."""

    def __init__(self, timer: Timer, sol: dict, method: str, params: dict, uid: int | None) -> None:
        s = timer.s
        self.timer, self.uid = timer, uid
        self.nonce = os.urandom(_NONCE)
        self.buf = b""
        self.msgs: list = []
        self.err_fd = os.memfd_create("stderr", 0)
        out_fd = os.memfd_create("stdout", 0)
        parent_sock, child_sock = socket.socketpair()
        self.sock = parent_sock
        tmpdir = timer.workdir(uid)
        # No RLIMIT_CPU: on this kernel an armed process CPU timer makes CLOCK_PROCESS_CPUTIME_ID
        # tick-granular (4 ms steps), which would ruin process_time_ns; the parent's wall-clock
        # deadline bounds every child instead.
        nonce = self.nonce
        confinement = {
            "fds": {0: timer.devnull, 1: out_fd, 2: self.err_fd, _CHANNEL_FD: child_sock.fileno()},
            "tmpdir": tmpdir,
            "uid": uid,
            "cpu_hard": float("inf"),
            "memory_bytes": s.memory_bytes,
            "max_output_bytes": s.max_output_bytes,
            "max_open_files": s.max_open_files,
            "max_processes": s.max_processes,
        }
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                parent_sock.close()
                os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir
                _child(sol, method, params, {**confinement, "nonce": nonce}, timer.filter, timer.helper)
            finally:
                os._exit(70)
        self.pid = pid
        child_sock.close()
        os.close(out_fd)

    def recv(self, timeout: float) -> dict | None:
        """Next message from the child, or None on deadline / exit without a message."""
        deadline = time.monotonic() + timeout
        fd = self.sock.fileno()
        while True:
            msg = self._parse()
            if msg is not None:
                return msg
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                return self._parse()
            self.buf += data

    def _parse(self) -> dict | None:
        at = self.buf.find(self.nonce)
        if at < 0:
            self.buf = self.buf[-(_NONCE - 1) :] if len(self.buf) >= _NONCE else self.buf
            return None
        head = at + _NONCE
        if len(self.buf) < head + _HDR.size:
            return None
        (n,) = _HDR.unpack_from(self.buf, head)
        if n > 1 << 20:
            self.buf = self.buf[head:]
            return None
        if len(self.buf) < head + _HDR.size + n:
            return None
        payload = self.buf[head + _HDR.size : head + _HDR.size + n]
        self.buf = self.buf[head + _HDR.size + n :]
        try:
            msg = marshal.loads(payload)
        except (ValueError, EOFError, TypeError):
            return None
        return msg if isinstance(msg, dict) else None

    def send(self, data: bytes) -> bool:
        try:
            self.sock.send(data)
            return True
        except OSError:
            return False

    def stderr_tail(self, n: int = 600) -> str:
        size = os.fstat(self.err_fd).st_size
        return os.pread(self.err_fd, n, max(0, size - n)).decode("utf-8", "replace")

    def finish(self, linger: float = 5.0) -> int:
        """Kill the child's process group and every process of its uid; reap; close channels."""
        for target in (-self.pid, self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        self.timer.reap(self.uid, linger)
        self.sock.close()
        os.close(self.err_fd)
        return status


class Timer:
    def __init__(self, settings: SandboxSettings) -> None:
        self.s = settings
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.filter = None
        self.helper = None
        self.info: dict = {"errors": [], "seccomp": False, "netns": False}
        confine.become_subreaper()
        if settings.unshare_net:
            self.info["netns"] = confine.unshare_net()
        if settings.seccomp:
            try:
                import seccomp

                self.filter = seccomp.compile_filter()
                self.info["seccomp"] = True
            except Exception as exc:  # noqa: BLE001
                self.info["errors"].append(f"seccomp: {exc}")
        if settings.extra.get("helper"):
            self.helper = ctypes.CDLL(settings.extra["helper"])
            self.helper.cp_dump.argtypes = [ctypes.c_char_p]
            self.info["on_valgrind"] = bool(self.helper.cp_running())
        self.root = os.path.join(settings.tmp_root, f"cpt{os.getpid()}")
        os.makedirs(self.root, 0o711, exist_ok=True)
        os.chmod(self.root, 0o711)
        self.cg_dir = settings.extra.get("cg_dir")

    def workdir(self, uid: int | None) -> str:
        return confine.fresh_dir(os.path.join(self.root, f"w{uid if uid is not None else 'x'}"), uid)

    @staticmethod
    def descendants_left() -> bool:
        """Whether a process started under this one still exists (exited ones are reaped here).

        This process is a child subreaper, so whatever a sample started stays a descendant
        (reparented here when its parent dies): none left means nothing of the sample survives.
        """
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return False
            if pid == 0:
                return True

    def reap(self, uid: int | None, linger: float = 5.0) -> None:
        # The uid sweep costs a fork (slow under valgrind): only when something survived the group kill.
        if uid is not None and self.descendants_left():
            confine.sweep_uid(uid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < linger:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                time.sleep(0.001)

    def reset_cg_dir(self, uid: int | None) -> None:
        confine.fresh_dir(self.cg_dir, uid)

    def read_counts(self, pid: int, repeats: int) -> list[int] | None:
        counts: dict[int, int] = {}
        try:
            names = os.listdir(self.cg_dir)
        except OSError:
            return None
        for name in names:
            if not name.startswith(f"{pid}."):
                continue
            label = total = None
            try:
                with open(os.path.join(self.cg_dir, name), "rb") as f:
                    head = f.read(8192)  # the header holds the trigger and the summary line
                for line in head.split(b"\n", 40)[:40]:
                    if line.startswith(b"desc: Trigger: Client Request: cp:"):
                        label = int(line.rsplit(b":", 1)[1])
                    elif line.startswith(b"summary:"):
                        total = int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if label is not None and total is not None:
                counts[label] = total
        if sorted(counts) != list(range(repeats)):
            return None
        return [counts[k] for k in range(repeats)]

    # -- methods -------------------------------------------------------------------------------------
    def uid(self, k: int = 0) -> int | None:
        base = self.s.sample_uid
        return None if base is None else base + k

    def run_sequential(self, method: str, sols: list[dict], p: dict) -> list[dict]:
        results = []
        for sol in sols:
            uid = self.uid()
            if method == "count":
                self.reset_cg_dir(uid)
            t0 = time.monotonic()
            child = Child(self, sol, method, p, uid)
            t1 = time.monotonic()
            msg = child.recv(p["budget"] + self.s.timeout + 5)
            t2 = time.monotonic()
            tail = child.stderr_tail()
            child.finish()
            t3 = time.monotonic()
            res: dict = {"id": sol["id"]}
            if msg is None:
                res["error"] = "no result (timeout or killed)"
            elif "error" in msg:
                res["error"] = msg["error"]
            elif method == "count":
                counts = self.read_counts(child.pid, p["repeats"])
                if counts is None:
                    res["error"] = "callgrind dumps missing"
                else:
                    res["counts"] = counts
            else:
                res.update(msg)
            if "error" in res:
                res["stderr"] = tail
            if method == "count":
                self.reset_cg_dir(None)
            res["seconds"] = {"spawn": t1 - t0, "run": t2 - t1, "finish": t3 - t2, "total": time.monotonic() - t0}
            results.append(res)
        return results

    def run_interleave(self, sols: list[dict], p: dict) -> list[dict]:
        children: list[Child | None] = []
        results: list[dict] = [{"id": s["id"], "ns": []} for s in sols]
        timeout = float(self.s.timeout)
        for k, sol in enumerate(sols):
            child = Child(self, sol, "interleave", p, self.uid(k))
            msg = child.recv(timeout + 5)
            if msg is None or "ready" not in msg:
                results[k]["error"] = (msg or {}).get("error", "did not start")
                results[k]["stderr"] = child.stderr_tail()
                child.finish(0.05)
                child = None
            children.append(child)
        n = len(sols)
        for r in range(p["warmup"] + p["rounds"]):
            order = [(r + j) % n for j in range(n)]  # rotate who goes first each round
            for k in order:
                child = children[k]
                if child is None:
                    continue
                msg = child.recv(timeout) if child.send(b"g") else None
                if msg is None or "ns" not in msg:
                    results[k]["error"] = (msg or {}).get("error", "no result (timeout or killed)")
                    results[k]["stderr"] = child.stderr_tail()
                    child.finish(0.05)
                    children[k] = None
                elif r >= p["warmup"]:
                    results[k]["ns"].append(int(msg["ns"]))
        for child in children:
            if child is not None:
                child.send(b"q")
                child.finish(0.05)
        self.reap(None)
        return results

    def serve(self, job: dict) -> dict:
        method, p = job["method"], job["params"]
        if method == "interleave":
            res = self.run_interleave(job["solutions"], p)
        else:
            res = self.run_sequential(method, job["solutions"], p)
        return {"results": res, "info": self.info}


def preimport(names: tuple[str, ...]) -> None:
    """Count mode: import standard modules that test programs commonly use (runner.PREIMPORT) once here,
    before the heap is frozen, so a child's warm-up does not spend its time (and valgrind translations)
    importing them again; the counted run is unaffected (it comes after the warm-ups, when every import
    is a cache hit anyway)."""
    import importlib

    for name in names:
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def main() -> None:
    settings = SandboxSettings.decode(sys.argv[1])
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    timer = Timer(settings)
    job = wire.recv_obj(rfd)
    confine.install_stdio()
    preimport(settings.preimport)
    gc.collect()
    gc.freeze()  # children start with nothing young to scan (their own gc.collect is then cheap)
    try:
        reply = timer.serve(job)
    except Exception as exc:  # noqa: BLE001
        reply = {"fatal": f"{type(exc).__name__}: {exc}", "info": timer.info}
    wire.send_obj(wfd, reply)
    os.close(wfd)
    os._exit(0)


if __name__ == "__main__":
    main()
