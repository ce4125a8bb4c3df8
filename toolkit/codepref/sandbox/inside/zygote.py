"""The zygote: forks every sample and judge process of a slot, from a process that never holds a test.

Standalone on purpose: imported as a top-level module inside the sandbox. The server forks it once at
start-up, before it reads any job, so its memory (which every forked child inherits, freed pages
included) only ever holds what it is sent afterwards: programs and stdin inputs. Tests and expected
outputs go to a judge over the judge's own channel after it is forked, never through here.

Requests come from the server as ``marshal`` frames on a stream socket; answers and exit reports go back
on a SEQPACKET socket, with the new processes' descriptors attached (SCM_RIGHTS):
  * ``{"kind": "judge", "cpu_hard"}`` -> ``("judge", pid)`` + [control socket, stderr]; the judge gets each
    sample's channel, and the tests, from the server over its control socket;
  * ``{"kind": "judged"|"io"|"inproc", "program", "cpu_hard", "stdin"}`` -> ``("sample", pid)`` +
    [status pipe, the sample's channel, stdout, stderr];
  * when a child exits: its process group is killed and reaped (its uid swept if something outlives
    that), then ``("exit", pid, wait_status, cpu_seconds)``.
"""

from __future__ import annotations

import fcntl
import marshal
import os
import select
import socket

import confine
import judge
import sample
import wire


class Zygote:
    def __init__(self, settings, req_fd: int, rep: socket.socket, seccomp_filter) -> None:
        self.s = settings
        self.req, self.rep, self.filter = req_fd, rep, seccomp_filter
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.children: dict[int, tuple[int, int | None]] = {}  # pid -> (pidfd, uid)
        self.statuses: dict[int, tuple[int, float]] = {}
        self.dying: dict[int, int | None] = {}  # process groups killed and not yet gone -> their uid
        me = os.getpid()
        self.dirs = {
            "sample": os.path.join(settings.tmp_root, f"s{me}"),
            "judge": os.path.join(settings.tmp_root, f"j{me}"),
        }

    # -- children --------------------------------------------------------------------------------------
    def _fork(self, role: str, fds: dict[int, int], cpu_hard: float, run) -> int:
        """Fork a confined child. A sample works in a fresh directory of its own (readable by the judge,
        so a test can check the files a sample wrote); a judge starts in that directory, with a private
        one of its own as HOME/TMPDIR."""
        uid = self.s.sample_uid if role == "sample" else self.s.judge_uid
        self.settle(uid)
        tmpdir = confine.fresh_dir(self.dirs[role], uid, 0o755 if role == "sample" else 0o700)
        cwd = tmpdir if role == "sample" else self.dirs["sample"]
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.environ["HOME"] = os.environ["TMPDIR"] = tmpdir
                confine.confine(
                    fds=fds,
                    tmpdir=cwd,
                    uid=uid,
                    cpu_hard=cpu_hard,
                    memory_bytes=self.s.memory_bytes,
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
        self.children[pid] = (os.pidfd_open(pid), uid)
        return pid

    def _sample(self, kind: str, job: dict, channel: int) -> tuple[int, list[int]]:
        out, err = os.memfd_create("stdout", 0), os.memfd_create("stderr", 0)
        stdin = job.get("stdin")
        if stdin is None:
            inp = os.dup(self.devnull)
        else:
            inp = os.memfd_create("stdin", 0)
            wire.write_all(inp, stdin.encode("utf-8", "surrogateescape"))
            os.lseek(inp, 0, os.SEEK_SET)
        status_r, status_w = os.pipe()
        program, cpu, limit = job["program"], self.s.cpu_seconds, self.s.max_output_bytes
        if kind == "judged":
            run = lambda: sample.run_judged(program, cpu, limit)  # noqa: E731
        elif kind == "io":
            run = lambda: sample.run_io(program, cpu)  # noqa: E731
        else:
            run = lambda: sample.run_inproc(program, cpu)  # noqa: E731
        pid = self._fork("sample", {0: inp, 1: out, 2: err, 3: channel, 4: status_w}, job["cpu_hard"], run)
        os.close(status_w)
        os.close(inp)
        return pid, [status_r, out, err]

    def spawn(self, job: dict) -> None:
        if job["kind"] == "judge":
            ctl_hub, ctl_child = socket.socketpair()
            err = os.memfd_create("stderr", 0)
            fcntl.fcntl(err, fcntl.F_SETFL, os.O_APPEND)  # the server empties it after each sample
            limit = self.s.max_output_bytes
            jfds = {0: self.devnull, 1: self.devnull, 2: err, 4: ctl_child.fileno()}
            pid = self._fork("judge", jfds, job["cpu_hard"], lambda: judge.main(limit))
            socket.send_fds(self.rep, [marshal.dumps(("judge", pid))], [ctl_hub.fileno(), err])
            ctl_hub.close()
            ctl_child.close()
            os.close(err)
            return
        a, b = socket.socketpair()
        pid, (status, out, err) = self._sample(job["kind"], job, a.fileno())
        socket.send_fds(self.rep, [marshal.dumps(("sample", pid))], [status, b.fileno(), out, err])
        for fd in (status, out, err):
            os.close(fd)
        a.close()
        b.close()

    def collect(self, ready: list[int]) -> None:
        """Report every tracked child that exited, at once; its process group is killed and left to die
        (``settle`` makes sure it is gone before its uid runs anything again)."""
        self._reap()
        for pid, (pidfd, uid) in list(self.children.items()):
            if pidfd not in ready and pid not in self.statuses:
                continue
            if pid not in self.statuses:
                _, status, ru = os.wait4(pid, 0)  # exited: does not block
                self.statuses[pid] = (status, ru.ru_utime + ru.ru_stime)
            confine.kill_group(pid)  # whatever it started dies with it
            self.dying[pid] = uid
            status, cpu = self.statuses.pop(pid)
            os.close(pidfd)
            del self.children[pid]
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
        for pgid, owner in list(self.dying.items()):
            if owner == uid:
                confine.wait_group_gone(pgid, uid if self.filter is None else None, [])
                self.dying.pop(pgid, None)
        if self.filter is None and uid is not None:
            confine.sweep_uid(uid)
        self._reap()

    def serve(self) -> None:
        while True:
            pidfds = [fd for fd, _ in self.children.values()]
            ready = select.select([self.req, *pidfds], [], [], 0.05 if self.dying else None)[0]
            if self.dying:
                self._reap()
            if any(fd != self.req for fd in ready):
                self.collect(ready)
            if self.req in ready:
                try:
                    job = wire.recv_obj(self.req)
                except (EOFError, OSError):
                    os._exit(0)
                self.spawn(job)


def probe(settings, seccomp_filter) -> tuple[dict, object]:
    """Check that the per-child layers work here (setuid to both uids, loading the seccomp filter);
    returns the hello record and the filter to use (None when it cannot load)."""
    info: dict = {"pid": os.getpid(), "seccomp": False, "setuid": False, "errors": []}
    checks = []
    if settings.sample_uid is not None:
        checks.append("setuid")
    if seccomp_filter is not None:
        checks.append("seccomp")
    for layer in checks:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                if layer == "setuid":
                    for uid in (settings.sample_uid, settings.judge_uid):
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


def main(settings, req_fd: int, rep: socket.socket, seccomp_filter) -> None:
    """Entry point of the zygote (never returns)."""
    confine.become_subreaper()
    confine.die_with_parent()
    info, seccomp_filter = probe(settings, seccomp_filter)
    if not info.get("setuid") and settings.sample_uid is not None:
        settings = settings._replace(sample_uid=None, judge_uid=None)
    rep.send(marshal.dumps(("hello", info)))
    import gc

    gc.collect()
    gc.freeze()
    try:
        Zygote(settings, req_fd, rep, seccomp_filter).serve()
    finally:
        os._exit(0)
