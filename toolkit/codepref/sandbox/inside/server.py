"""The execution server of one slot: judges jobs with processes it never shares with sample code.

Run as a script (``python -s -B server.py <SandboxSettings hex>``), usually inside bubblewrap. Protocol
with the pool on fds 0/1 (moved away at start so no child inherits them): ``wire.send_obj`` frames; the
first message is a hello naming the layers that work here; then one reply per job.

Per job the server (trusted; it runs neither sample nor test code) asks the zygote for processes:
  * assert jobs: a *sample* process (runs the program, answers calls with plain data) and a *judge*
    process (runs the tests, calling into the sample); the judge reports one verdict per unit. Tests go
    to the judge over its own channel; the sample's process never holds them. Model-written tests
    (``untrusted``) get a fresh pair per unit, so one test decides only its own verdict. Units whose
    trust level is ``in-process`` are errors, not run, unless the settings allow ``in_process``: then each
    runs with the program in one fresh process that reports its own verdict.
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
import stat
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
NOT_RUN_IN_PROCESS = (
    b"test %d needs the sample's own types (trust level in-process) and was not run: a verdict reached in the "
    b"sample's process is the sample's to forge (in_process_tests=true runs it there)\n"
)
_JUDGE_CODES = (PASS, FAIL, ERROR, KILLED)
_REPLY_TIMEOUT = 30.0
WARM_COUNTED_RUNS = 2  # counted runs of an empty program when the counting zygote starts (the last one counts)


class SandboxFailure(Exception):
    """The zygote stopped answering: the pool restarts this server."""


class SpawnError(Exception):
    """The zygote could not start a process for this job (the job errs; the server goes on)."""


class Proc:
    """A process the zygote started, seen from here."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None
        self.cpu = 0.0
        self.killed_by_us = False


class Zygote:
    """A zygote, seen from here: where to send requests, where its answers and exit reports come from."""

    def __init__(self, pid: int, req: int, rep: socket.socket) -> None:
        self.pid, self.req, self.rep = pid, req, rep
        self.spawned: list[tuple[tuple, list[int]]] = []


class Judge:
    """A judge process, seen from here: its control socket and its stderr."""

    def __init__(self, proc: Proc, ctl: socket.socket, err: int, keep: bool) -> None:
        self.proc, self.ctl, self.err, self.keep = proc, ctl, err, keep


class Hub:
    def __init__(self, settings: SandboxSettings, zpid: int, req_fd: int, rep: socket.socket) -> None:
        self.s = settings
        self.zygotes: dict[str, Zygote] = {"native": Zygote(zpid, req_fd, rep)}
        self.zpid = zpid
        self.procs: dict[int, Proc] = {}
        self.seccomp = False  # set from the zygote's hello: the filter really loads in children
        self.judge: Judge | None = None  # kept across samples for ground-truth tests
        self.tails: list[bytes] = []
        self.io_harness: int | None = None  # instructions of an empty counted stdin/stdout run
        self.echo_offset = 0  # a counted run's harness share = its echo's count + this
        self.echo_counts: dict[bytes, int] = {}  # conversation digest -> its echo's count (trusted judges)

    # -- zygote ----------------------------------------------------------------------------------------
    def _spawn_sample(
        self, kind: str, program: str, cpu_hard: float, which: str = "native", timed: bool = False, stdin=None
    ):
        """A sample process (``_spawn``), then its program (and stdin input) over its own channel: the
        zygote, whose memory every sample inherits, never holds a program or an input."""
        msg, fds = self._spawn({"kind": kind, "cpu_hard": cpu_hard, "timed": True if timed else None}, which)
        with contextlib.suppress(OSError):  # one that died at once shows up as its death
            wire.send_msg(fds[1], wire.dumps(["load", program, stdin]))
        return msg, fds

    def _reps(self) -> list[socket.socket]:
        return [z.rep for z in self.zygotes.values()]

    def _drain_reports(self) -> None:
        for name, z in list(self.zygotes.items()):
            while select.select([z.rep], [], [], 0)[0]:
                data, fds, _, _ = socket.recv_fds(z.rep, 4096, 8)
                if not data:
                    if name == "native":
                        raise SandboxFailure("the zygote is gone")
                    self._drop_counter()
                    break
                msg = marshal.loads(data)
                if msg[0] == "exit":
                    proc = self.procs.get(msg[1])
                    if proc is not None:
                        proc.status, proc.cpu = msg[2], msg[3]
                else:  # registered now: its exit report may already be next in this drain
                    if msg[0] in ("judge", "sample"):
                        for pid in msg[1:] if msg[0] == "judge" else msg[1:2]:
                            self.procs[pid] = Proc(pid)
                    z.spawned.append((msg, fds))

    def _spawn(self, job: dict, which: str = "native") -> tuple[tuple, list[int]]:
        z = self.zygotes[which]
        wire.send_obj(z.req, job)
        deadline = time.monotonic() + _REPLY_TIMEOUT
        while not z.spawned:
            if time.monotonic() > deadline or self.zygotes.get(which) is not z:
                raise SandboxFailure(f"the {which} zygote did not answer")
            select.select(self._reps(), [], [], 1.0)
            self._drain_reports()
        msg, fds = z.spawned.pop(0)
        if msg[0] == "failed":
            raise SpawnError(str(msg[1]))
        return msg, fds

    def _wait(self, fds: list[int], deadline: float) -> list[int]:
        """Readable ``fds`` (after taking in any exit reports); [] when a report came or the deadline passed."""
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        reps = self._reps()
        ready = select.select([*fds, *reps], [], [], left)[0]
        if any(r in ready for r in reps):
            self._drain_reports()
        return [fd for fd in ready if fd not in reps]

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
                    if not self.s.in_process:
                        self.tails.append(NOT_RUN_IN_PROCESS % i)
                        codes[i], i = ERROR, i + 1
                        continue
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
        msg, (ctl, err) = self._spawn({"kind": "judge", "cpu_hard": cpu_hard, "untrusted": untrusted})
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
        msg, (status_fd, chan, out, serr) = self._spawn_sample("judged", job["program"], cpu_hard)
        os.close(out)
        pair = {"s": self.procs[msg[1]], "serr": serr, "in_plan": True}
        units = job["units"]
        plan = {
            "setup": job.get("setup") or "",
            "units": [(k, units[k]) for k in wanted],
            "entry_point": job.get("entry_point") or "",
            "cwd": msg[2],
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

    def _unit(self, pair: dict, i: int, limit: float | None = None) -> tuple[int, bool, bool]:
        """(outcome code of unit ``i``, whether the sample's process and the judge can go on)."""
        s, judge = pair["s"], pair["j"]
        j, ctl = judge.proc, judge.ctl.fileno()
        try:
            wire.send_ctl(ctl, b"U", i, 0)  # run unit i
        except OSError:
            return ERROR, False, False
        deadline = time.monotonic() + (limit or self.s.timeout)
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
        msg, (status_fd, chan, out, err) = self._spawn_sample("inproc", job["program"], cpu_hard)
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

    # -- timing: runs measured from here -------------------------------------------------------------------
    # A timed run is one fresh sample process (nothing from an earlier run, warm-up or test is in it): its
    # program loaded once, then every unit the run times, each answer checked by the judge. Its CPU time is
    # read here from the kernel (the process's CPU clock, all threads, while it waits: after it compiled and
    # before its program runs, then after its last answer); with ``counted``, its instruction count comes
    # from valgrind's own totals for that process (the count at a snapshot taken before any sample code, and
    # the count valgrind writes when it exits). Nothing the sample writes is a measurement.
    def _cpu(self, pid: int) -> int:
        return time.clock_gettime_ns(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the whole process

    def _await_sleep(self, p: Proc, deadline: float) -> bool:
        """Wait until the process sleeps (blocked reading its channel); False when it died or ran over."""
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{p.pid}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                return False
            if state == b"S":
                return True
            if state in (b"Z", b"X"):
                return False
            self._wait([], time.monotonic() + 0.0002)
        return False

    def _count_dir(self) -> str:
        return self.s.extra["count_dir"]

    def _counter(self) -> None:
        """Start the counting zygote: this server's zygote program under valgrind (cachegrind: it has no
        client requests that start, stop or reset counting), in a mount namespace where the standard
        library's ctypes and test modules do not exist, with address-space randomisation off."""
        if "counted" in self.zygotes:
            return
        d = self._count_dir()
        os.makedirs(d, 0o700, exist_ok=True)
        if self.s.sample_uid is not None:
            os.chown(d, self.s.sample_uid, self.s.sample_uid)
        _burn_small_pids()
        req_hub, req_z = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        rep_hub, rep_z = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [
            self.s.extra["valgrind"],
            *self.s.extra["valgrind_args"],
            f"--cachegrind-out-file={d}/%p",
            sys.executable,
            "-S",  # no site-packages (nor -I: that would ignore PYTHONHASHSEED, and counts would vary)
            "-s",
            "-B",
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py"),
            self.s.encode(),
            str(req_z.fileno()),
            str(rep_z.fileno()),
        ]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - becomes the counting zygote
            try:
                _hide_native_calls()
                os.set_inheritable(req_z.fileno(), True)
                os.set_inheritable(rep_z.fileno(), True)
                os.execve(argv[0], argv, dict(os.environ))
            except BaseException as exc:  # noqa: BLE001 - the server reports that the counter did not start
                with contextlib.suppress(BaseException):
                    os.write(2, f"counting zygote: {type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(127)
        req_z.close()
        rep_z.close()
        z = Zygote(pid, req_hub.detach(), rep_hub)
        self.zygotes["counted"] = z
        deadline = time.monotonic() + 120
        while select.select([z.rep], [], [], max(0.0, deadline - time.monotonic()))[0]:
            data = z.rep.recv(65536)
            if not data:
                break
            if marshal.loads(data)[0] == "hello":
                self.io_harness = None
                self.echo_counts.clear()
                self._warm_counter()
                return
        self._drop_counter()
        raise SandboxFailure("the counting zygote did not start (valgrind)")

    def _drop_counter(self) -> None:
        z = self.zygotes.pop("counted", None)
        if z is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(z.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(z.pid, 0)
            with contextlib.suppress(OSError):
                os.close(z.req)
            z.rep.close()

    def _warm_counter(self) -> None:
        """Counted runs of an empty program before the first real one: the interpreter specialises the
        zygote's own code during its first forks, which moves the first runs' counts a little."""
        self.echo_offset = 0
        for _ in range(WARM_COUNTED_RUNS):
            run = self._timed_assert_run({"program": "", "units": [], "setup": "", "unit_seconds": 120}, counted=True)
            if run.get("ir") is None:
                tail = b"".join(self.tails)[-1500:].decode("utf-8", "replace")
                raise SandboxFailure(f"could not count an empty run: {run.get('error')}; {tail}")
        # the echo's own fixed work (its globals) against the harness's: the empty program counts 0
        self.echo_offset = run["raw_ir"] - run["harness_ir"]

    def _profile_total(self, pid: int) -> int | None:
        """The total valgrind wrote for process ``pid`` (the last ``summary:`` line of its file, read without
        following links or blocking), removing the file; None when there is none.

        valgrind truncates and rewrites the file at the process's exit, or, when it cannot open it for
        writing, prints an error and writes nothing: then the file holds whatever the process put there. So
        only a regular file, with one link, owned by the counted uid and writable by its owner (valgrind ran
        as that owner and could open it) is valgrind's; a file the process created read-only (the mode is set
        at creation, no chmod needed), a FIFO or a directory is no count."""
        path = os.path.join(self._count_dir(), str(pid))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            owner = self.s.sample_uid if self.s.sample_uid is not None else os.geteuid()
            if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != owner or not st.st_mode & stat.S_IWUSR:
                return None
            tail = os.pread(fd, 4096, max(0, st.st_size - 4096))
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(path)
        for line in reversed(tail.splitlines()):
            if line.startswith(b"summary:"):
                try:
                    return int(line.split()[1])
                except (IndexError, ValueError):
                    return None
        return None

    def _clear_count_dir(self) -> None:
        """Before a counted run: nothing an earlier process left is where valgrind will write."""
        d = self._count_dir()
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if os.path.isdir(path) and not os.path.islink(path):
                import shutil

                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)

    def run_timed(self, job: dict) -> list[dict]:
        """``job["runs"]`` timed runs of one program on its units (or its stdin/stdout inputs)."""
        counted = bool(job.get("counted"))
        if counted:
            self._counter()
        runs = []
        for _ in range(int(job.get("runs", 1))):
            io = job.get("inputs") is not None
            runs.append(self._timed_io_run(job, counted) if io else self._timed_assert_run(job, counted))
        return runs

    def _timed_start(self, job: dict, counted: bool, kind: str, stdin: str | None = None, handover=None) -> tuple:
        """A timed sample process waiting at its start: (proc, channel, stdout, stderr, cpu0, base, error);
        ``self.timed_cwd`` is the sample's directory. ``handover(proc, channel)``: called before waiting for
        the start (it gives the channel away: ``channel`` is then -1)."""
        if counted:
            self._clear_count_dir()
        limit = _limit(job, self.s.timeout)
        # no CPU rlimit: an armed CPU timer makes the process CPU clock tick-granular; the deadlines bound it
        which = "counted" if counted else "native"
        msg, (status_fd, chan, out, err) = self._spawn_sample(
            kind, job["program"], float("inf"), which, timed=True, stdin=stdin
        )
        p = self.procs[msg[1]]
        self.timed_cwd = msg[2]
        deadline = time.monotonic() + limit
        if handover is not None:
            try:
                handover(p, chan)
            except OSError:
                os.close(status_fd)
                return p, -1, out, err, None, None, "the judge is gone"
            finally:
                os.close(chan)
            chan = -1
        try:
            head = self._status(status_fd, p, deadline, 5)
        finally:
            os.close(status_fd)
        if isinstance(head, int) or head[:1] != b"C" or len(head) < 5:
            syntax = isinstance(head, bytes) and head[:1] == b"S"
            return p, chan, out, err, None, None, "the program does not compile" if syntax else "did not start"
        if not self._await_sleep(p, deadline):
            return p, chan, out, err, None, None, "did not start"
        cpu0 = self._cpu(p.pid)
        base = None
        if counted:
            base = self._profile_total(int.from_bytes(head[1:5], "little"))
            if base is None:
                return p, chan, out, err, cpu0, None, "no instruction count at the start"
        return p, chan, out, err, cpu0, base, None

    def _timed_end(self, p: Proc, base: int | None, counted: bool, deadline: float) -> tuple[int | None, str | None]:
        """After a counted run, the sample process exits on its own and valgrind's total for it is read:
        (instructions of the run, None) or (None, why not). (None, None) for a CPU-time run."""
        if not counted:
            return None, None
        while p.status is None and time.monotonic() < deadline:
            self._wait([], deadline)
        if p.status is None or not os.WIFEXITED(p.status) or os.WEXITSTATUS(p.status) != 0:
            return None, f"did not exit normally after the run (status {p.status}; no instruction count)"
        final = self._profile_total(p.pid)
        if final is None or base is None:
            return None, "no instruction count at the end"
        return final - base, None

    def _timed_assert_run(self, job: dict, counted: bool) -> dict:
        units = list(job.get("units") or []) or ["pass"]  # the program is loaded by the first unit
        p, chan, out, err, cpu0, base, fail = self._timed_start(job, counted, "judged")
        os.close(out)
        record: dict = {"ok": False}
        if fail is not None:
            os.close(chan)
            self._finish(p)
            self._tail(err)
            return {**record, "error": fail}
        pair: dict = {"s": p, "serr": err, "in_plan": True}
        plan = {
            "setup": job.get("setup") or "",
            "units": list(enumerate(units)),
            "entry_point": job.get("entry_point") or "",
            "one_load": True,  # the whole check program: the program loaded once, then every unit
            "cwd": self.timed_cwd,
            "record": counted,  # the conversation, replayed without the program (``_harness_count``)
        }
        judge_ok = True
        try:
            pair["j"] = self._judge(bool(job.get("untrusted")))
            try:
                wire.send_obj_fds(pair["j"].ctl, plan, [chan])
            finally:
                os.close(chan)
            limit = _limit(job, self.s.timeout)
            for i in range(len(units)):
                code, _, judge_ok = self._unit(pair, i, limit)
                if code != PASS:
                    record["error"] = f"unit {i} did not pass in the timed run (outcome {code})"
                    return record
            deadline = time.monotonic() + limit
            if not self._await_sleep(p, deadline):
                record["error"] = "did not finish the run"
                return record
            record["cpu_ns"] = self._cpu(p.pid) - cpu0
            digest = None
            if counted:  # the judge lets go of the channel: the sample process ends, valgrind writes its total
                digest = self._digest(pair["j"], deadline) if pair["j"].keep else None
                wire.send_ctl(pair["j"].ctl.fileno(), b"D", 0, 0)
                pair["in_plan"] = False
            ir, error = self._timed_end(p, base, counted, deadline)
            if counted and error is None:
                harness = self.echo_counts.get(digest) if digest else None
                if harness is None:
                    harness, error, judge_ok = self._harness_count(pair["j"], job)
                    if digest and error is None:
                        if len(self.echo_counts) >= 4096:
                            self.echo_counts.clear()
                        self.echo_counts[digest] = harness
                if error is None:  # the run's own count, and the harness's share of it
                    record["raw_ir"], record["harness_ir"] = ir, harness + self.echo_offset
                    ir = max(0, ir - record["harness_ir"])
            if error:
                record["error"] = error
                return record
            record["ir"] = ir
            record["ok"] = True
            return record
        finally:
            if "j" in pair:
                self._end_pair(pair, judge_ok)
            else:
                self._finish(p)
                self._tail(err)

    def _io_harness(self) -> int:
        """The harness's share of a counted stdin/stdout run: the count of an empty program's run."""
        if self.io_harness is None:
            self.io_harness = 0  # while the empty run itself is counted
            run = self._timed_io_run({"program": "", "inputs": [""], "expected": [""], "unit_seconds": 120}, True)
            self.io_harness = None
            if not run.get("ok"):
                raise SandboxFailure(f"could not count an empty stdin/stdout run: {run.get('error')}")
            self.io_harness = int(run["ir"])
        return self.io_harness

    def _digest(self, judge: Judge, deadline: float) -> bytes | None:
        """The digest of the conversation the (trusted, kept) judge recorded in this run: the echo's count
        is a function of the conversation, so one echo serves every run with the same one."""
        fd = judge.ctl.fileno()
        try:
            wire.send_ctl(fd, b"H", 0, 0)
        except OSError:
            return None
        buf = b""
        while len(buf) < wire.CTL.size + 32 and self._wait([fd], deadline):
            chunk = os.read(fd, wire.CTL.size + 32 - len(buf))
            if not chunk:
                return None
            buf += chunk
        if len(buf) < wire.CTL.size + 32 or buf[:1] != b"H":
            return None
        return buf[wire.CTL.size :]

    def _harness_count(self, judge: Judge, job: dict) -> tuple[int | None, str | None, bool]:
        """The harness's share of the counted run just judged by ``judge``: the count of an echo process
        (``sample.Echo``) that the judge drives through the same conversation with the run's recorded
        answers and no program. (instructions or None, why not, whether the judge is still in step)."""
        limit = _limit(job, self.s.timeout)
        pair: dict = {"j": judge, "in_plan": False}

        def handover(p: Proc, chan: int) -> None:
            wire.send_obj_fds(judge.ctl, {"replay": True}, [chan])
            pair["in_plan"] = True

        p, _, out, err, _, base, fail = self._timed_start({**job, "program": ""}, True, "echo", handover=handover)
        os.close(out)
        pair.update(s=p, serr=err)
        ir, error, judge_ok = None, fail and f"calibration: {fail}", pair["in_plan"]
        try:
            if fail is None:
                ir, error, judge_ok = self._replay(pair, base, limit)
        finally:
            self._finish(p)
            self._tail(err)
            if pair["in_plan"] and judge_ok:
                try:
                    wire.send_ctl(judge.ctl.fileno(), b"D", 0, 0)
                except OSError:
                    judge_ok = False
        return ir, error, judge_ok

    def _replay(self, pair: dict, base: int | None, limit: float) -> tuple[int | None, str | None, bool]:
        code, _, judge_ok = self._unit(pair, 0, limit)
        if code != PASS:
            return None, f"calibration: the replay did not complete (outcome {code})", judge_ok
        deadline = time.monotonic() + limit
        if not self._await_sleep(pair["s"], deadline):
            return None, "calibration: did not finish the replay", judge_ok
        wire.send_ctl(pair["j"].ctl.fileno(), b"D", 0, 0)
        pair["in_plan"] = False
        ir, error = self._timed_end(pair["s"], base, True, deadline)
        return ir, error and f"calibration: {error}", judge_ok

    def _timed_io_run(self, job: dict, counted: bool) -> dict:
        """A stdin/stdout run: one fresh process per input, each started by a byte from here; CPU time from
        its start to its exit (the kernel's total for it), instructions as for asserts; every output checked."""
        total_cpu, total_ir = 0, 0
        for k, stdin in enumerate(job["inputs"]):
            p, chan, out, err, cpu0, base, fail = self._timed_start(job, counted, "io", stdin)
            try:
                if fail is not None:
                    return {"ok": False, "error": fail}
                deadline = time.monotonic() + _limit(job, self.s.timeout)
                os.write(chan, b"g")
                while p.status is None and time.monotonic() < deadline:
                    self._wait([], deadline)
                if p.status is None:
                    return {"ok": False, "error": f"input {k}: ran out of time"}
                if not os.WIFEXITED(p.status) or os.WEXITSTATUS(p.status) != 0:
                    return {"ok": False, "error": f"input {k}: did not exit normally"}
                data = os.pread(out, self.s.max_output_bytes + 1, 0)
                text = data.decode("utf-8", "replace")
                if len(data) > self.s.max_output_bytes or not compare.outputs_match(
                    text, job["expected"][k], job.get("tol")
                ):
                    return {"ok": False, "error": f"input {k}: wrong output in the timed run"}
                total_cpu += int(p.cpu * 1e9) - cpu0
                if counted:
                    ir, error = self._timed_end(p, base, counted, deadline)
                    if error:
                        return {"ok": False, "error": f"input {k}: {error}"}
                    total_ir += max(0, ir - self._io_harness())
            finally:
                os.close(chan)
                os.close(out)
                self._finish(p)
                self._tail(err)
        return {"ok": True, "cpu_ns": total_cpu, "ir": total_ir if counted else None}

    def run_interleave(self, job: dict) -> list[list[dict]]:
        """Candidates of one problem measured round-robin (who goes first rotates every round): one timed run
        of each per round, ``warmup`` rounds first (discarded); per candidate, the list of its runs."""
        cands = job["candidates"]
        out: list[list[dict]] = [[] for _ in cands]
        dead = [False] * len(cands)
        for r in range(int(job.get("warmup", 0)) + int(job["rounds"])):
            for j in range(len(cands)):
                k = (r + j) % len(cands)
                if dead[k]:
                    continue
                run = (
                    self._timed_assert_run(cands[k], False)
                    if cands[k].get("inputs") is None
                    else self._timed_io_run(cands[k], False)
                )
                if not run.get("ok"):
                    dead[k] = True  # one bad candidate stays one bad candidate: the others go on
                    out[k] = [run]
                elif r >= int(job.get("warmup", 0)):
                    out[k].append(run)
        return out

    # -- stdin/stdout jobs ------------------------------------------------------------------------------
    def run_io(self, job: dict) -> list[int]:
        codes: list[int] = []
        expected, tol = job["expected"], job.get("tol")
        for k, stdin in enumerate(job["units"]):
            msg, (status_fd, chan, out, err) = self._spawn_sample(
                "io", job["program"], self.s.cpu_seconds + 2, stdin=stdin
            )
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
                if job["mode"] == "time":
                    reply = {"runs": self.run_timed(job)}
                elif job["mode"] == "interleave":
                    reply = {"runs": self.run_interleave(job)}
                else:
                    codes = (self.run_io if job["mode"] == "io" else self.run_asserts)(job)
                    reply = {"codes": codes}
                reply["stderr"] = b"".join(self.tails)[-self.s.tail_bytes :]
            except SandboxFailure as exc:
                wire.send_obj(wfd, {"error": f"{exc}", "fatal": True})
                return
            except Exception as exc:  # noqa: BLE001 - report, keep serving
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            wire.send_obj(wfd, reply)


def _burn_small_pids() -> None:
    """Use up the pids below 300 of this pid namespace: a counted process handles the pids of the processes
    it forks (its snapshot), and CPython's ints up to 256 are shared objects, larger ones are allocated.
    Past 300 (where the kernel's pid allocation wraps back to) every pid costs the same."""
    while True:
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            os._exit(0)
        os.waitpid(pid, 0)
        if pid > 300:
            return


def _limit(job: dict, default: float) -> float:
    """Wall seconds a timed run's unit (or input) may take: the job's own (counted runs are ~50x slower)."""
    return float(job.get("unit_seconds") or default)


def _hide_native_calls() -> None:
    """In the (about to exec) counting zygote: a mount namespace of its own in which the standard library's
    modules that can call native code at any address (ctypes) or poke at interpreter internals (the test
    modules) are empty files, so a counted sample cannot write and run machine code (which could issue
    valgrind client requests); address-space randomisation off, so counts repeat exactly."""
    import ctypes  # only in this child, which is about to exec
    import importlib.util

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x00020000) != 0:  # CLONE_NEWNS
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    spec = importlib.util.find_spec("_ctypes")
    if spec is not None and spec.origin:
        folder = os.path.dirname(spec.origin)
        for name in os.listdir(folder):
            if (
                name.startswith(("_ctypes", "_test", "_xxtestfuzz"))
                and libc.mount(b"/dev/null", os.path.join(folder, name).encode(), None, 4096, None) != 0
            ):  # MS_BIND
                raise OSError(ctypes.get_errno(), f"cannot hide {name}")
    libc.personality(0x0040000)  # ADDR_NO_RANDOMIZE


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
    if settings.extra.get("jail_dir"):  # _cpjail: no ctypes in this process or any it forks
        sys.path.append(settings.extra["jail_dir"])
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
