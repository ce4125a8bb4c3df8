"""The zygote: forks every sample and judge process of a slot, from a process that never holds a test.

Standalone on purpose: imported as a top-level module inside the sandbox. The server forks it once at
start-up, before it reads any job, so its memory (which every forked child inherits, freed pages
included) never holds a test, an expected output, a program or an input: those go to each judge or
sample over its own channel after it is forked.

Requests come from the server as ``marshal`` frames on a stream socket; answers and exit reports go back
on a SEQPACKET socket, with the new processes' descriptors attached (SCM_RIGHTS):
  * ``{"kind": "judge", "cpu_hard"}`` -> ``("judge", pid)`` + [control socket, stderr]; the judge gets each
    sample's channel, and the tests, from the server over its control socket;
  * ``{"kind": "judged"|"io"|"inproc", "cpu_hard", "timed"}`` -> ``("sample", pid, its directory)`` +
    [status pipe, the sample's channel, stdout, stderr]; the server then sends the program (and stdin
    input) over that channel, so this process never holds one;
  * when a child exits: its process group is killed and reaped (its uid swept if something outlives
    that), then ``("exit", pid, wait_status, cpu_seconds)``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":  # exec'd as a script (the counting zygote): its siblings are importable
    sys.path[0] = os.path.dirname(os.path.abspath(__file__))

import contextlib
import fcntl
import marshal
import select
import signal
import socket
import struct

import confine
import judge
import sample
import wire


class Zygote:
    def __init__(self, settings, req_fd: int, rep: socket.socket, seccomp_filter, counted: bool = False) -> None:
        self.s = settings
        self.req, self.rep, self.filter = req_fd, rep, seccomp_filter
        self.counted = counted  # this zygote runs under valgrind: its samples are counted
        import seccomp

        self.timing_filter = seccomp.compile_timing_filter(valgrind=counted)
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.children: dict[int, int | None] = {}  # pid -> uid
        self.statuses: dict[int, tuple[int, float]] = {}
        self.dying: dict[int, int | None] = {}  # process groups killed and not yet gone -> their uid
        # SIGCHLD wakes the loop (pidfd_open does not exist under valgrind 3.19, and valgrind cannot always
        # deliver a signal to a Python process waiting in select: the counting zygote polls instead)
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        if not counted:
            signal.set_wakeup_fd(wake_w)
            signal.signal(signal.SIGCHLD, lambda *_: None)
        # the counting zygote's paths carry no pid: what a counted run allocates must not depend on them
        me = "counted" if counted else os.getpid()
        self.dirs = {
            "sample": os.path.join(settings.tmp_root, f"s{me}"),
            "judge": os.path.join(settings.tmp_root, f"j{me}"),
            "untrusted": os.path.join(settings.tmp_root, f"u{me}"),
        }

    # -- children --------------------------------------------------------------------------------------
    def _fork(self, role: str, fds: dict[int, int], cpu_hard: float, run) -> int:
        """Fork a confined child in a fresh directory of its own. A sample's is readable by the judge (which
        moves into it for each sample it judges, so a test can check the files a sample wrote)."""
        uid = self._uid(role)
        self.settle(uid)
        tmpdir = confine.fresh_dir(self.dirs[role], uid, 0o755 if role == "sample" else 0o700)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            self._child(role, uid, tmpdir, fds, cpu_hard, run)
        self.children[pid] = uid
        return pid

    def _uid(self, role: str) -> int | None:
        return {"sample": self.s.sample_uid, "judge": self.s.judge_uid, "untrusted": self.s.untrusted_uid}[role]

    def _child(self, role: str, uid, tmpdir: str, fds: dict[int, int], cpu_hard: float, run) -> None:
        """The child side of a fork: confine, then run (never returns)."""
        try:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir
            confine.confine(
                fds=fds,
                tmpdir=tmpdir,
                uid=uid,
                cpu_hard=cpu_hard,
                memory_bytes=self.s.memory_bytes + (2 << 30 if self.counted and self.s.memory_bytes else 0),
                hide_proc=self.counted,
                max_output_bytes=self.s.max_output_bytes,
                max_open_files=self.s.max_open_files,
                max_processes=self.s.max_processes,
                seccomp_filter=self.filter,
            )
        except BaseException:  # noqa: BLE001 - no sandbox, no run
            os._exit(71)
        try:
            run()
        finally:
            os._exit(70)

    # -- counted samples: forked by a template whose state never changes ---------------------------------

    def start_template(self) -> None:
        """Fork the template that forks every counted sample process. It loops in C (``_cpjail.fork_loop``)
        on one request at a time (fork, answer the pid, wait for that process, answer its status), running
        no Python code between forks, so every counted process starts from the same interpreter state: the
        same program on the same inputs gets the same count, whatever ran before it."""
        self.tsock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the template
            self.tsock.close()
            self._template_loop(theirs)
        theirs.close()
        self.template = pid

    def _template_loop(self, sock: socket.socket) -> None:
        uid, tmpdir, limit, cpu = self.s.sample_uid, self.dirs["sample"], self.s.max_output_bytes, self.s.cpu_seconds
        timed = {"counted": True, "filter": self.timing_filter}
        data, fds = confine.jail().fork_loop(sock.fileno())  # returns only in a forked child: a counted sample
        sock.close()
        confine.fresh_dir(tmpdir, uid, 0o755, mount=False, trash=f".trash-{os.getpid()}")
        if data == b"i":
            run = lambda: sample.run_io(cpu, timed)  # noqa: E731
        elif data == b"e":
            run = lambda: sample.run_echo(limit, timed)  # noqa: E731
        else:
            run = lambda: sample.run_judged(cpu, limit, timed)  # noqa: E731
        chans = {0: self.devnull, 1: fds[0], 2: fds[1], 3: fds[2], 4: fds[3]}
        self._child("sample", uid, tmpdir, chans, float("inf"), run)

    def _counted_sample(self, kind: str) -> tuple[int, list[int]]:
        out, err = os.memfd_create("stdout", 0), os.memfd_create("stderr", 0)
        status_r, status_w = os.pipe()
        a, b = socket.socketpair()
        code = {"io": b"i", "echo": b"e"}.get(kind, b"j")
        socket.send_fds(self.tsock, [code], [out, err, a.fileno(), status_w])
        pid = int.from_bytes(self.tsock.recv(16), "little", signed=True)
        os.close(status_w)
        a.close()
        if pid <= 0:
            for fd in (out, err, status_r):
                os.close(fd)
            b.close()
            raise OSError("the template could not fork")
        self.children[pid] = self.s.sample_uid
        return pid, [status_r, b.detach(), out, err]

    def _sample(self, kind: str, job: dict, channel: int) -> tuple[int, list[int]]:
        """A sample process. Its program (and stdin input) come from the server over its channel once it
        runs: the zygote never holds a program, so no sample finds another's in the memory it inherits."""
        out, err = os.memfd_create("stdout", 0), os.memfd_create("stderr", 0)
        status_r, status_w = os.pipe()
        cpu, limit = self.s.cpu_seconds, self.s.max_output_bytes
        timed = None
        if job.get("timed") is not None:
            timed = {"counted": self.counted, "filter": self.timing_filter}
        if kind == "judged":
            run = lambda: sample.run_judged(cpu, limit, timed)  # noqa: E731
        elif kind == "io":
            run = lambda: sample.run_io(cpu, timed)  # noqa: E731
        else:
            run = lambda: sample.run_inproc(cpu)  # noqa: E731
        fds = {0: self.devnull, 1: out, 2: err, 3: channel, 4: status_w}
        pid = self._fork("sample", fds, job["cpu_hard"], run)
        os.close(status_w)
        return pid, [status_r, out, err]

    def spawn(self, job: dict) -> None:
        if job["kind"] == "judge":
            ctl_hub, ctl_child = socket.socketpair()
            err = os.memfd_create("stderr", 0)
            fcntl.fcntl(err, fcntl.F_SETFL, os.O_APPEND)  # the server empties it after each sample
            limit = self.s.max_output_bytes
            jfds = {0: self.devnull, 1: self.devnull, 2: err, 4: ctl_child.fileno()}
            role = "untrusted" if job.get("untrusted") else "judge"
            pid = self._fork(role, jfds, job["cpu_hard"], lambda: judge.main(limit))
            socket.send_fds(self.rep, [marshal.dumps(("judge", pid))], [ctl_hub.fileno(), err])
            ctl_hub.close()
            ctl_child.close()
            os.close(err)
            return
        a, b = socket.socketpair()
        pid, (status, out, err) = self._sample(job["kind"], job, a.fileno())
        msg = ("sample", pid, self.dirs["sample"])  # the judge works in the sample's directory
        socket.send_fds(self.rep, [marshal.dumps(msg)], [status, b.fileno(), out, err])
        for fd in (status, out, err):
            os.close(fd)
        a.close()
        b.close()

    def collect(self) -> None:
        """Report every tracked child that exited, at once; its process group is killed and left to die
        (``settle`` makes sure it is gone before its uid runs anything again)."""
        self._reap()
        for pid in [p for p in self.children if p in self.statuses]:
            uid = self.children.pop(pid)
            status, cpu = self.statuses.pop(pid)
            confine.kill_group(pid)  # whatever it started dies with it
            self.dying[pid] = uid
            self.rep.send(marshal.dumps(("exit", pid, status, cpu)))

    def _reap(self) -> None:
        for pid, status, cpu in confine.reap_zombies():
            if pid in self.children:
                self.statuses[pid] = (status, cpu)
        for pgid in [g for g in self.dying if not confine.group_alive(g)]:
            del self.dying[pgid]

    def settle(self, uid: int | None) -> None:
        """Before ``uid`` runs a new process: nothing of an earlier process of that uid is left. With the
        seccomp filter a sample cannot leave its process group, so the group is all there is; without
        it, the uid is swept too."""
        self._reap()
        reaped: list = []
        for pgid, owner in list(self.dying.items()):
            if owner == uid:
                confine.wait_group_gone(pgid, uid if self.filter is None else None, reaped)
                self.dying.pop(pgid, None)
        for pid, status, cpu in reaped:
            if pid in self.children:
                self.statuses[pid] = (status, cpu)
        if self.filter is None and uid is not None:
            confine.sweep_uid(uid)
        self._reap()

    def serve_counted(self) -> None:
        """The counting zygote's loop: one counted sample process at a time (the template's), its exit
        reported before the next request is read."""
        self.start_template()
        while True:
            try:
                job = wire.recv_obj(self.req)
            except (EOFError, OSError):
                os._exit(0)
            try:
                pid, (status_r, chan, out, err) = self._counted_sample(job["kind"])
            except OSError as exc:
                self.rep.send(marshal.dumps(("failed", f"{type(exc).__name__}: {exc}")))
                continue
            socket.send_fds(
                self.rep, [marshal.dumps(("sample", pid, self.dirs["sample"]))], [status_r, chan, out, err]
            )
            for fd in (status_r, chan, out, err):
                os.close(fd)
            reply = b""
            while len(reply) < 16:
                chunk = self.tsock.recv(16 - len(reply))
                if not chunk:
                    os._exit(0)
                reply += chunk
            _, status, cpu = struct.unpack("<iid", reply)
            self.children.pop(pid, None)
            confine.kill_group(pid)
            # emptied here, not in the next counted process: what it finds there would change its count
            confine.fresh_dir(self.dirs["sample"], self.s.sample_uid, 0o755, mount=False)
            self.rep.send(marshal.dumps(("exit", pid, status, cpu)))
            confine.reap_zombies()

    def serve(self) -> None:
        if self.counted:
            self.serve_counted()
        while True:
            poll = 0.005 if self.counted and self.children else 0.05 if self.dying else None
            ready = select.select([self.req, self.wake_r], [], [], poll)[0]
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 4096):
                        pass
            self.collect()
            if self.req in ready:
                try:
                    job = wire.recv_obj(self.req)
                except (EOFError, OSError):
                    os._exit(0)
                try:
                    self.spawn(job)
                except OSError as exc:  # no space, no memory, no processes: this request fails, not the zygote
                    self.rep.send(marshal.dumps(("failed", f"{type(exc).__name__}: {exc}")))


def probe(settings, seccomp_filter, counted: bool = False) -> tuple[dict, object]:
    """Check that the per-child layers work here (setuid to both uids, loading the seccomp filter);
    returns the hello record and the filter to use (None when it cannot load)."""
    info: dict = {"pid": os.getpid(), "seccomp": False, "setuid": False, "errors": []}
    checks = []
    if settings.sample_uid is not None:
        checks.append("setuid")
    uids = (settings.sample_uid,) if counted else (settings.sample_uid, settings.judge_uid, settings.untrusted_uid)
    if seccomp_filter is not None:
        checks.append("seccomp")
    for layer in checks:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                if layer == "setuid":
                    for uid in uids:
                        if os.fork() == 0:
                            os.setgroups([])
                            os.setgid(uid)
                            os.setuid(uid)
                            os._exit(0)
                        if os.waitstatus_to_exitcode(os.wait()[1]) != 0:
                            os._exit(2)
                else:
                    seccomp_filter.load(os.getpid())
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
        info[layer] = ok
        if not ok:
            info["errors"].append(f"{layer} probe failed (status {status})")
            if layer == "seccomp":
                seccomp_filter = None
    return info, seccomp_filter


def main(settings, req_fd: int, rep: socket.socket, seccomp_filter, counted: bool = False) -> None:
    """Entry point of the zygote (never returns)."""
    confine.become_subreaper()
    confine.die_with_parent()
    info, seccomp_filter = probe(settings, seccomp_filter, counted)
    if not info.get("setuid") and settings.sample_uid is not None:
        settings = settings._replace(sample_uid=None, judge_uid=None, untrusted_uid=None)
    rep.send(marshal.dumps(("hello", info)))
    import gc

    gc.collect()
    gc.freeze()
    try:
        Zygote(settings, req_fd, rep, seccomp_filter, counted).serve()
    finally:
        os._exit(0)


if __name__ == "__main__":  # the counting zygote: exec'd by the server under valgrind (``Hub._counter``)
    from settings import SandboxSettings

    _settings = SandboxSettings.decode(sys.argv[1])
    if _settings.extra.get("jail_dir"):
        sys.path.append(_settings.extra["jail_dir"])
    for _name in _settings.preimport:
        try:  # noqa: SIM105 - contextlib is not imported in the zygote
            __import__(_name)
        except ImportError:
            pass
    import seccomp as _seccomp

    confine.install_stdio()
    main(_settings, int(sys.argv[2]), socket.socket(fileno=int(sys.argv[3])), _seccomp.compile_filter(), True)
