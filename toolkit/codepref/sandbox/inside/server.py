"""The execution server of one slot: judges jobs with processes it never shares with sample code.

Run as a script (``python -s -B server.py <SandboxSettings hex>``), usually inside bubblewrap. Protocol
with the pool on fds 0/1 (moved away at start so no child inherits them): ``wire.send_obj`` frames; the
first message is a hello naming the layers that work here; then one reply per job.

Per job the server (trusted; it runs neither sample nor test code) asks the zygote for processes:
  * assert jobs: a *sample* process (runs the program, answers calls with plain data) and a *judge*
    process (runs the tests, calling into the sample); the judge reports one verdict per unit. Tests go
    to the judge over its own channel; the sample's process never holds them. Model-written tests
    (``untrusted``) get a fresh pair per unit, so one test decides only its own verdict. Units whose
    trust level is ``in-process`` run with the program in one fresh process that reports its own verdict.
  * stdin/stdout jobs: a sample process per input; its exit status and stdout come here, and the
    expected output, which never leaves this process, is compared here.
Deadlines (wall clock, per unit and for loading the program) are kept here, from when this process
starts a unit: nothing a sample or judge writes moves them. Deaths are classified here from the exit
status the zygote reports (CPU limit -> timeout; memory, output, seccomp, SIGKILL -> killed).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import select
import signal
import socket
import sys
import time

if __name__ == "__main__":
    del sys.path[0]  # this directory must not shadow user imports
    sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import confine  # noqa: E402
import wire  # noqa: E402
from settings import SandboxSettings  # noqa: E402

PASS, FAIL, ERROR, TIMEOUT, SYNTAX, KILLED = range(6)
IN_PROCESS = "in-process"
_JUDGE_CODES = (PASS, FAIL, ERROR, KILLED)
_REPLY_TIMEOUT = 30.0


class SandboxFailure(Exception):
    """The zygote stopped answering: the pool restarts this server."""


class Proc:
    """A process the zygote started, seen from here."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None
        self.cpu = 0.0
        self.killed_by_us = False


class Judge:
    """A judge process, seen from here: its control socket and its stderr."""

    def __init__(self, proc: Proc, ctl: socket.socket, err: int, keep: bool) -> None:
        self.proc, self.ctl, self.err, self.keep = proc, ctl, err, keep


class Hub:
    def __init__(self, settings: SandboxSettings, zpid: int, req_fd: int, rep: socket.socket) -> None:
        self.s = settings
        self.zpid, self.req, self.rep = zpid, req_fd, rep
        self.procs: dict[int, Proc] = {}
        self.seccomp = False  # set from the zygote's hello: the filter really loads in children
        self.judge: Judge | None = None  # kept across samples for ground-truth tests
        self.spawned: list[tuple[tuple, list[int]]] = []
        self.tails: list[bytes] = []

    # -- zygote ----------------------------------------------------------------------------------------
    def _drain_reports(self) -> None:
        while select.select([self.rep], [], [], 0)[0]:
            data, fds, _, _ = socket.recv_fds(self.rep, 4096, 8)
            if not data:
                raise SandboxFailure("the zygote is gone")
            msg = marshal.loads(data)
            if msg[0] == "exit":
                proc = self.procs.get(msg[1])
                if proc is not None:
                    proc.status, proc.cpu = msg[2], msg[3]
            else:  # registered now: its exit report may already be next in this drain
                for pid in msg[1:]:
                    self.procs[pid] = Proc(pid)
                self.spawned.append((msg, fds))

    def _spawn(self, job: dict) -> tuple[tuple, list[int]]:
        wire.send_obj(self.req, job)
        deadline = time.monotonic() + _REPLY_TIMEOUT
        while not self.spawned:
            if time.monotonic() > deadline:
                raise SandboxFailure("the zygote did not answer")
            select.select([self.rep], [], [], 1.0)
            self._drain_reports()
        return self.spawned.pop(0)

    def _wait(self, fds: list[int], deadline: float) -> list[int]:
        """Readable ``fds`` (after taking in any exit reports); [] when a report came or the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        ready = select.select([*fds, self.rep], [], [], left)[0]
        if self.rep in ready:
            self._drain_reports()
        return [fd for fd in ready if fd != self.rep]

    def _kill(self, *procs: Proc) -> None:
        for p in procs:
            if p.status is None:
                p.killed_by_us = True
                confine.kill_group(p.pid)

    def _finish(self, *procs: Proc) -> None:
        """Kill ``procs`` (their whole process groups). The zygote makes sure nothing of a uid is left before
        it runs that uid again; without the seccomp filter (a sample could leave its group) wait here until
        the zygote has reported each gone."""
        self._kill(*procs)
        if self.seccomp:
            for p in procs:
                self.procs.pop(p.pid, None)
            return
        deadline = time.monotonic() + _REPLY_TIMEOUT
        while any(p.status is None for p in procs):
            if time.monotonic() > deadline:
                raise SandboxFailure("the zygote did not report an exit")
            self._wait([], deadline)
        for p in procs:
            self.procs.pop(p.pid, None)

    def _death(self, p: Proc, timed_out: bool = False) -> int:
        """Outcome code of a process that ended before its unit had a verdict."""
        if timed_out or p.killed_by_us:  # this process only kills on a deadline (or after the job)
            return TIMEOUT
        status = p.status
        if status is not None and os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            if sig == signal.SIGXCPU or (sig == signal.SIGKILL and p.cpu >= self.s.cpu_seconds):
                return TIMEOUT
            if sig in (signal.SIGXFSZ, signal.SIGSYS, signal.SIGKILL):
                return KILLED
        return ERROR

    def _tail(self, fd: int, close: bool = True) -> None:
        """Keep the end of a stderr memfd; one that stays open (a kept judge's) is emptied for the next
        sample (the judge writes to it in append mode)."""
        n = self.s.tail_bytes
        with contextlib.suppress(OSError):
            size = os.fstat(fd).st_size
            self.tails.append(os.pread(fd, n, max(0, size - n)))
            if not close:
                os.ftruncate(fd, 0)
        if close:
            os.close(fd)

    # -- the program's status pipe ----------------------------------------------------------------------
    def _status(self, fd: int, proc: Proc, deadline: float, n: int) -> bytes | int:
        """Up to ``n`` status bytes of a sample process, or an outcome code when it died or ran out of time."""
        got = b""
        while len(got) < n:
            if self._wait([fd], deadline):
                chunk = os.read(fd, n - len(got))
                if not chunk:  # closed early (the process is ending, or the sample closed it)
                    return got if got[:1] in (b"S", b"K") else self._await_death(proc, deadline)
                got += chunk
                continue
            if proc.status is not None:
                with contextlib.suppress(OSError):  # bytes written just before it died
                    while len(got) < n and select.select([fd], [], [], 0)[0]:
                        chunk = os.read(fd, n - len(got))
                        if not chunk:
                            break
                        got += chunk
                if len(got) < n:
                    return got if got[:1] in (b"S", b"K") else self._death(proc)
                break
            if time.monotonic() >= deadline:
                self._kill(proc)
                return got if got[:1] in (b"S", b"K") else TIMEOUT
        return got

    @staticmethod
    def _compile_code(status: bytes) -> int | None:
        """The program's fate from the first status byte (written before any sample code ran)."""
        return {b"S": SYNTAX, b"K": KILLED}.get(status[:1])

    # -- assert jobs -------------------------------------------------------------------------------------
    def run_asserts(self, job: dict) -> list[int]:
        units = job["units"]
        n = len(units)
        trust = job.get("trust") or [None] * n
        untrusted = bool(job.get("untrusted"))
        codes: list[int | None] = [None] * n
        loaded = False  # a sample process ran the program to its end: later load failures are per unit
        pair = None
        i = 0
        try:
            while i < n:
                if trust[i] == IN_PROCESS and not untrusted:
                    if pair is not None:
                        self._end_pair(pair, True)
                        pair = None
                    code, whole = self._inproc(job, i)
                    if whole:
                        codes[i:] = [code] * (n - i)
                        break
                    codes[i], i = code, i + 1
                    continue
                if pair is None:
                    wanted = [i] if untrusted else [k for k in range(i, n) if trust[k] != IN_PROCESS]
                    pair, load = self._start_pair(job, wanted, untrusted)
                    if load is not None:
                        code, compile_time = load
                        if compile_time or not loaded:  # the program itself does not load: every unit
                            codes[i:] = [code] * (n - i)
                            break
                        codes[i], i, pair = code, i + 1, None
                        continue
                    loaded = True
                code, sample_ok, judge_ok = self._unit(pair, i)
                codes[i], i = code, i + 1
                if not (sample_ok and judge_ok) or untrusted:
                    self._end_pair(pair, judge_ok)
                    pair = None
        finally:
            if pair is not None:
                self._end_pair(pair, True)
        return [ERROR if c is None else c for c in codes]

    # -- judges: one kept per server for ground-truth tests, a fresh one per model-written unit ----------
    def _judge(self, untrusted: bool) -> Judge:
        if not untrusted and self.judge is not None and self.judge.proc.status is None:
            return self.judge
        # a judge kept across samples runs only trusted test code and answers to the server's deadlines;
        # one for a model-written unit gets a CPU limit like a sample's
        cpu_hard = 2 * self.s.cpu_seconds + 2 if untrusted else float("inf")
        msg, (ctl, err) = self._spawn({"kind": "judge", "cpu_hard": cpu_hard})
        judge = Judge(self.procs[msg[1]], socket.socket(fileno=ctl), err, keep=not untrusted)
        if judge.keep:
            self.judge = judge
        return judge

    def _drop_judge(self, judge: Judge) -> None:
        try:
            self._finish(judge.proc)
        finally:
            judge.ctl.close()
            os.close(judge.err)
            if self.judge is judge:
                self.judge = None

    def _start_pair(self, job: dict, wanted: list[int], untrusted: bool):
        """A sample process with the program loaded, and a judge holding its channel and the tests;
        (pair, None), or (None, (code, compile_time)) when the program did not load."""
        cpu_hard = self.s.cpu_seconds * (len(wanted) + 1) + 2
        msg, (status_fd, chan, out, serr) = self._spawn(
            {"kind": "judged", "program": job["program"], "cpu_hard": cpu_hard}
        )
        os.close(out)
        pair = {"s": self.procs[msg[1]], "serr": serr, "in_plan": True}
        units = job["units"]
        plan = {
            "setup": job.get("setup") or "",
            "units": [(k, units[k]) for k in wanted],
            "entry_point": job.get("entry_point") or "",
        }
        try:
            for attempt in (0, 1):
                pair["j"] = self._judge(untrusted)
                try:
                    wire.send_obj_fds(pair["j"].ctl, plan, [chan])
                    break
                except OSError:  # the kept judge is gone: start another
                    self._drop_judge(pair["j"])
                    if attempt:
                        raise SandboxFailure("cannot start a judge") from None
        finally:
            os.close(chan)
        try:
            status = self._status(status_fd, pair["s"], time.monotonic() + self.s.timeout, 2)
        finally:
            os.close(status_fd)
        load = None
        if isinstance(status, int):
            load = (status, False)
        elif (code := self._compile_code(status)) is not None:
            load = (code, True)
        elif status[1:2] in (b"E", b"K"):  # the program raised while loading (its own report)
            load = (KILLED if status[1:2] == b"K" else ERROR, False)
        if load is not None:
            self._end_pair(pair, True)
            return None, load
        return pair, None

    def _end_pair(self, pair: dict, judge_ok: bool) -> None:
        """Kill the sample's process; keep the judge when it is in step (tell it this sample is done)."""
        judge: Judge = pair["j"]
        try:
            self._finish(pair["s"])
            if judge_ok and judge.keep and judge.proc.status is None and pair["in_plan"]:
                try:
                    wire.send_ctl(judge.ctl.fileno(), b"D", 0, 0)
                except OSError:
                    judge_ok = False
        finally:
            self._tail(pair["serr"])
            self._tail(judge.err, close=False)
            if not (judge_ok and judge.keep and judge.proc.status is None):
                self._drop_judge(judge)

    def _unit(self, pair: dict, i: int) -> tuple[int, bool, bool]:
        """(outcome code of unit ``i``, whether the sample's process and the judge can go on)."""
        s, judge = pair["s"], pair["j"]
        j, ctl = judge.proc, judge.ctl.fileno()
        try:
            wire.send_ctl(ctl, b"U", i, 0)  # run unit i
        except OSError:
            return ERROR, False, False
        deadline = time.monotonic() + self.s.timeout
        buf = b""
        closed = False
        while True:
            if self._wait([] if closed else [ctl], deadline) and not closed:
                try:
                    chunk = os.read(ctl, wire.CTL.size - len(buf))
                except OSError:
                    chunk = b""
                if not chunk:
                    closed = True
                buf += chunk
                if len(buf) == wire.CTL.size:
                    kind, index, code = wire.CTL.unpack(buf)
                    buf = b""
                    if index != i or kind not in (b"V", b"B", b"G"):
                        return ERROR, False, False
                    if kind == b"V":
                        return (code if code in _JUDGE_CODES else ERROR), True, True
                    pair["in_plan"] = False  # the judge left this sample and waits for the next one
                    if kind == b"G":  # the sample went away mid-unit: how it ended decides
                        return self._await_death(s, deadline), False, True
                    return (code if code in _JUDGE_CODES else ERROR), False, True
                continue
            if s.status is not None:  # the judge may still be reading its channel: replace it too
                return self._death(s), False, False
            if j.status is not None:
                return ERROR, False, False
            if time.monotonic() >= deadline:
                self._kill(s, j)
                return TIMEOUT, False, False

    def _await_death(self, p: Proc, deadline: float) -> int:
        while p.status is None and time.monotonic() < deadline:
            self._wait([], deadline)
        return self._death(p, timed_out=p.status is None)

    def _inproc(self, job: dict, i: int) -> tuple[int, bool]:
        """A unit run in the sample's own process (trust level ``in-process``); (code, applies to all)."""
        cpu_hard = self.s.cpu_seconds * 2 + 2
        msg, (status_fd, chan, out, err) = self._spawn(
            {"kind": "inproc", "program": job["program"], "cpu_hard": cpu_hard}
        )
        os.close(out)
        p = self.procs[msg[1]]
        try:
            status = self._status(status_fd, p, time.monotonic() + self.s.timeout, 1)
            os.close(status_fd)
            if isinstance(status, int) or self._compile_code(status) is not None:
                code = status if isinstance(status, int) else self._compile_code(status)
                return code, code in (SYNTAX, KILLED) and not isinstance(status, int)
            with contextlib.suppress(OSError):
                wire.send_msg(chan, wire.dumps(["unit", i, job.get("setup") or "", job["units"][i]]))
            deadline = time.monotonic() + 2 * self.s.timeout  # the program and the unit
            buf = b""
            while True:
                if self._wait([chan], deadline):
                    chunk = b""
                    with contextlib.suppress(OSError):
                        chunk = os.read(chan, wire.CTL.size - len(buf))
                    buf += chunk
                    if len(buf) == wire.CTL.size:
                        kind, index, code = wire.CTL.unpack(buf)
                        ok = kind == b"V" and index == i and code in _JUDGE_CODES
                        return (code if ok else ERROR), False
                    if chunk:
                        continue
                    return self._await_death(p, deadline), False
                if p.status is not None:
                    return self._death(p), False
                if time.monotonic() >= deadline:
                    self._kill(p)
                    return TIMEOUT, False
        finally:
            os.close(chan)
            self._finish(p)
            self._tail(err)

    # -- stdin/stdout jobs ------------------------------------------------------------------------------
    def run_io(self, job: dict) -> list[int]:
        codes: list[int] = []
        expected, tol = job["expected"], job.get("tol")
        for k, stdin in enumerate(job["units"]):
            job_k = {"kind": "io", "program": job["program"], "stdin": stdin, "cpu_hard": self.s.cpu_seconds + 2}
            msg, (status_fd, chan, out, err) = self._spawn(job_k)
            os.close(chan)
            p = self.procs[msg[1]]
            deadline = time.monotonic() + self.s.timeout
            try:
                status = self._status(status_fd, p, deadline, 1)
                os.close(status_fd)
                code = status if isinstance(status, int) else self._compile_code(status)
                if code is None:
                    code = self._await_death(p, deadline)
                    if code == ERROR and p.status is not None and os.WIFEXITED(p.status):
                        code = {0: PASS, 3: KILLED}.get(os.WEXITSTATUS(p.status), ERROR)
                if code == PASS:
                    data = os.pread(out, self.s.max_output_bytes + 1, 0)
                    if len(data) > self.s.max_output_bytes:
                        code = KILLED
                    else:
                        ok = compare.outputs_match(data.decode("utf-8", "replace"), expected[k], tol)
                        code = PASS if ok else FAIL
            finally:
                os.close(out)
                self._finish(p)
                self._tail(err)
            if code == SYNTAX:
                return [SYNTAX] * len(job["units"])
            codes.append(code)
        return codes

    # -- pool protocol -----------------------------------------------------------------------------------
    def serve(self, rfd: int, wfd: int, hello: dict) -> None:
        wire.send_obj(wfd, hello)
        while True:
            try:
                job = wire.recv_obj(rfd)
            except EOFError:
                return
            self.tails = []
            try:
                codes = (self.run_io if job["mode"] == "io" else self.run_asserts)(job)
                reply = {"codes": codes, "stderr": b"".join(self.tails)[-self.s.tail_bytes :]}
            except SandboxFailure as exc:
                wire.send_obj(wfd, {"error": f"{exc}", "fatal": True})
                return
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            wire.send_obj(wfd, reply)


def _preimport(names: tuple[str, ...]) -> None:
    import importlib

    for name in names:
        with contextlib.suppress(ImportError):  # optional stdlib module missing on this build
            importlib.import_module(name)


def start(settings: SandboxSettings, inherited: tuple[int, ...] = ()) -> tuple[Hub, dict]:
    """Fork the zygote (before any job is read) and wait for its hello."""
    import seccomp

    hello: dict = {"errors": [], "netns": False}
    if settings.unshare_net:  # before forking: the zygote and every child share the new namespace
        hello["netns"] = confine.unshare_net()
        if not hello["netns"]:
            hello["errors"].append("unshare(CLONE_NEWNET) failed")
    flt = None
    if settings.seccomp:
        try:
            flt = seccomp.compile_filter()
        except Exception as exc:  # noqa: BLE001
            hello["errors"].append(f"seccomp: {exc}")
    if settings.tmp_root == "/tmp":  # inside bubblewrap: only the per-process directories are writable
        os.chmod("/tmp", 0o711)
    req_hub, req_zyg = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    rep_hub, rep_zyg = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    import gc

    gc.collect()
    zpid = os.fork()
    if zpid == 0:  # pragma: no cover - the zygote
        import zygote

        req_hub.close()
        rep_hub.close()
        for fd in inherited:  # the pool's channel stays with the server
            os.close(fd)
        zygote.main(settings, req_zyg.detach(), rep_zyg, flt)
    req_zyg.close()
    rep_zyg.close()
    hub = Hub(settings, zpid, req_hub.detach(), rep_hub)
    data = rep_hub.recv(65536)
    if not data:
        raise SandboxFailure("the zygote did not start")
    info = marshal.loads(data)[1]
    hub.seccomp = bool(info.get("seccomp"))
    hello.update({k: v for k, v in info.items() if k != "errors"})
    hello["errors"] += info.get("errors", [])
    return hub, hello


def main() -> None:
    settings = SandboxSettings.decode(sys.argv[1])
    rfd, wfd = os.dup(0), os.dup(1)
    os.set_inheritable(rfd, False)
    os.set_inheritable(wfd, False)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.pop("PWD", None)  # bubblewrap sets it; keep the environment minimal
    _preimport(settings.preimport)
    import judge  # noqa: F401 - imported before the zygote forks, so every child has it
    import sample  # noqa: F401
    import zygote  # noqa: F401

    confine.install_stdio()  # children inherit them empty
    hub, hello = start(settings, (rfd, wfd))
    try:
        hub.serve(rfd, wfd, hello)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hub.zpid, signal.SIGKILL)


if __name__ == "__main__":
    main()
