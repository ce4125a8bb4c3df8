"""Confinement of a freshly forked child (sample or judge), and the process-level helpers around it.

Standalone on purpose: imported as a top-level module inside the sandbox. One place for what used to be
written twice (execution harness and timing harness): session, stdio, descriptors, working directory,
rlimits, unprivileged uid, parent-death signal, non-dumpable, seccomp — in that order.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import resource
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000


class _CtypesJail:
    """The confinement primitives through ctypes (when ``_cpjail`` could not be built)."""

    def __init__(self) -> None:
        import ctypes

        self._ctypes = ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            err = self._ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def load_filter(self, program: bytes) -> None:
        ct = self._ctypes

        class Fprog(ct.Structure):
            _fields_ = [("len", ct.c_ushort), ("filter", ct.c_void_p)]

        buf = ct.create_string_buffer(program, len(program))
        fprog = Fprog(len(program) // 8, ct.addressof(buf))
        self._check(self._libc.prctl(38, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
        self._check(self._libc.prctl(22, 2, ct.addressof(fprog), 0, 0), "PR_SET_SECCOMP")

    def prctl(self, option: int, value: int) -> None:
        self._check(self._libc.prctl(option, value, 0, 0, 0), "prctl")

    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(flags), "unshare")

    def detach(self, target: str) -> None:
        self._check(self._libc.umount2(target.encode(), 2), "umount2")

    def mount_tmpfs(self, target: str, options: str) -> None:
        flags = 0x2 | 0x4 | 0x8  # MS_NOSUID | MS_NODEV | MS_NOEXEC
        self._check(self._libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options.encode()), "mount")


_JAIL = None


def jail():
    """``_cpjail`` (a C extension built by the host, see ``host.build_jail``) when it is importable,
    else the same primitives through ctypes. A process that must not hold ctypes (a counted sample)
    only ever uses the first."""
    global _JAIL
    if _JAIL is None:
        try:
            import _cpjail

            _JAIL = _cpjail
        except ImportError:
            _JAIL = _CtypesJail()
    return _JAIL


def confine(
    *,
    fds: dict[int, int],
    tmpdir: str,
    uid: int | None,
    cpu_hard: int | float,
    memory_bytes: int,
    max_output_bytes: int,
    max_open_files: int,
    max_processes: int,
    seccomp_filter=None,
    hide_proc: bool = False,
) -> None:
    """Confine the calling (just forked) process. ``fds`` maps the descriptor numbers the child keeps
    (0, 1, 2 and its channels) to the descriptors that should be there; every other one is closed."""
    os.setsid()
    moved = {target: fcntl.fcntl(src, fcntl.F_DUPFD_CLOEXEC, 1000) for target, src in fds.items()}
    for target, src in moved.items():
        os.dup2(src, target, inheritable=True)
    keep = sorted(moved)
    lo = 0
    for k in keep:
        if k > lo:
            os.closerange(lo, k)
        lo = k + 1
    os.closerange(lo, 1 << 16)
    os.chdir(tmpdir)
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, max_output_bytes),
        (resource.RLIMIT_NOFILE, max_open_files),
        (resource.RLIMIT_CPU, cpu_hard),
    ]
    if memory_bytes:
        limits.append((resource.RLIMIT_AS, memory_bytes))
    if uid is not None:
        limits.append((resource.RLIMIT_NPROC, max_processes))
    for which, value in limits:
        value = resource.RLIM_INFINITY if value == float("inf") else int(value)
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            if which != resource.RLIMIT_NOFILE:
                raise
            # under valgrind (timing stage) only the soft fd limit may change; valgrind enforces it
            resource.setrlimit(which, (value, resource.getrlimit(which)[1]))
    if hide_proc:  # a counted sample: no /proc/self/mem to rewrite valgrind's or its own code with
        jail().unshare(CLONE_NEWNS)
        jail().detach("/proc")
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    jail().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    jail().prctl(_PR_SET_DUMPABLE, 0)  # no ptrace, /proc/<pid>/mem or fd access by others
    if seccomp_filter is not None:
        seccomp_filter.load(os.getpid())
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # output/file cap kills (CPython ignores it by default)


def install_stdio() -> None:
    """Fresh, empty text streams on fds 0/1/2; called once before forking so children inherit them ready."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def cpu_budget(seconds: int) -> None:
    """Per-unit CPU limit: the soft RLIMIT_CPU is moved to (used so far + budget), under the hard limit."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(ru.ru_utime + ru.ru_stime) + 1 + seconds
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def become_subreaper() -> None:
    jail().prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    jail().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def unshare_net() -> bool:
    try:
        jail().unshare(CLONE_NEWNET)
    except OSError:
        return False
    return True


_TRASH = [0]
_MOUNTED: set[str] = set()
_CAN_MOUNT = [True]
QUOTA = "size=64m,nr_inodes=4096"  # what one process may store in its directory


def fresh_dir(path: str, uid: int | None, mode: int = 0o700, mount: bool = True, trash: str | None = None) -> str:
    """``path`` as an empty directory owned by ``uid``: a new tmpfs of its own (``QUOTA``: bounded size and
    number of files, nothing executable), mounted over the last one, which goes with everything in it.
    Without the right to mount, whatever a previous process left is moved aside and deleted by a
    background ``rm -rf`` (a tree of any depth or size costs the caller one rename)."""
    if mount and _CAN_MOUNT[0]:
        try:
            if path in _MOUNTED:
                jail().detach(path)
                _MOUNTED.discard(path)
            os.makedirs(path, mode, exist_ok=True)
            owner = f",uid={uid},gid={uid}" if uid is not None else ""
            jail().mount_tmpfs(path, f"{QUOTA},mode={mode:o}{owner}")
            _MOUNTED.add(path)
            return path
        except OSError:
            _CAN_MOUNT[0] = False
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            if os.listdir(path):
                _TRASH[0] += 1
                trash = os.path.join(os.path.dirname(path), trash or f".trash-{os.getpid()}-{_TRASH[0]}")
                os.rename(path, trash)
                _remove_in_background(trash)
        else:
            os.unlink(path)
    if not os.path.isdir(path):
        os.mkdir(path, mode)
    os.chmod(path, mode)
    if uid is not None:
        os.chown(path, uid, uid)
    return path


def _remove_in_background(path: str) -> None:
    """Delete ``path`` in a child process (reaped by the caller's zombie reaping, never waited for)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.execv("/bin/rm", ["rm", "-rf", "--one-file-system", "--", path])
        except OSError:
            import shutil

            with contextlib.suppress(RecursionError):
                shutil.rmtree(path, ignore_errors=True)
        finally:
            os._exit(0)


def sweep_uid(uid: int) -> None:
    """Kill every process of ``uid`` (a forked helper drops to it and signals -1)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(-pgid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pgid, signal.SIGKILL)


def group_alive(pgid: int) -> bool:
    try:
        os.kill(-pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_zombies() -> list[tuple[int, int, float]]:
    """Reap every exited child (this process is a subreaper): (pid, wait status, CPU seconds) each."""
    out = []
    while True:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        if pid == 0:
            return out
        out.append((pid, status, ru.ru_utime + ru.ru_stime))


def wait_group_gone(pgid: int, uid: int | None, reaped: list, linger: float = 2.0) -> None:
    """Kill process group ``pgid`` and wait until none of it is left (reaping as it goes; reaped
    statuses are appended to ``reaped``); sweep ``uid`` if something outlives 50 ms (give up after
    ``linger`` seconds)."""
    kill_group(pgid)
    t0 = time.monotonic()
    swept = False
    while True:
        reaped.extend(reap_zombies())
        if not group_alive(pgid):
            return
        if time.monotonic() - t0 > 0.05 and not swept and uid is not None:
            sweep_uid(uid)
            swept = True
        if time.monotonic() - t0 > linger:
            return
        time.sleep(0.0005)


def format_exc(exc: BaseException, limit: int = 3) -> str:
    """The last ``limit`` frames of ``exc`` outside this directory, and the exception, in the usual form.
    Written here rather than with ``traceback`` (which would cost every forked process ~0.5 MiB)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if os.path.dirname(code.co_filename) != here:
            frames.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
        tb = tb.tb_next
    lines = ["Traceback (most recent call last):\n", *frames[-limit:]] if frames else []
    if isinstance(exc, SyntaxError):
        lines.append(f'  File "{exc.filename}", line {exc.lineno}\n')
        if exc.text:
            lines.append(f"    {exc.text.rstrip()}\n")
        lines.append(f"SyntaxError: {exc.msg}\n")
        return "".join(lines)
    try:
        msg = str(exc)
    except BaseException:  # noqa: BLE001 - user objects may misbehave while formatting
        msg = ""
    name = type(exc).__name__
    lines.append(f"{name}: {msg}\n" if msg else f"{name}\n")
    return "".join(lines)


def log_exc(label: str, exc: BaseException) -> None:
    """The last frames of ``exc`` on stderr (the tail the server keeps for debugging)."""
    try:
        text = format_exc(exc)
    except BaseException:  # noqa: BLE001
        text = f"{type(exc).__name__}\n"
    try:
        sys.stderr.write(f"[{label}] {text}")
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
