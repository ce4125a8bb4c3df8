"""Host side of the sandbox layer: the filesystem view, environment, uids and settings of a server.

The execution pool and the timing stage both start their sandboxed processes through this module (one
bubblewrap command line, one scrubbed environment, one settings type).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from .inside.settings import SandboxSettings

INSIDE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inside")
SERVER_SCRIPT = os.path.join(INSIDE_DIR, "server.py")
JAIL_SOURCE = os.path.join(INSIDE_DIR, "_cpjail.c")
logger = logging.getLogger(__name__)
# What a sandboxed process sees of the host: the system's programs and libraries, Python's prefixes and
# site-packages, the sandbox's own scripts, and a few files the dynamic linker and libc read. Nothing else
# (no home directories, no /work, /opt, /srv, /var or /etc beyond these files).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
BWRAP_LAYERS = ("bwrap-namespaces(net,pid,ipc,uts)", "minimal-readonly-fs", "private-tmp")
ALWAYS_LAYERS = (
    "rlimits(as,cpu,fsize,nofile,core)",
    "scrubbed-env",
    "process-group-kill",
    "wall-timeout(server)",
    "two-party-judging(tests and verdicts outside the sample's process)",
)
SETUID_LAYER = "setuid(unprivileged uids: sample and judge apart, per slot)+nproc-limit"
SECCOMP_LAYER = "seccomp(no exec, no inet sockets, no ptrace, no foreign signals, no SysV/POSIX IPC)"
# Standard modules the server imports once before forking: a sample or judge gets them for free. Every
# MiB in the forking process costs fork time (~0.1 ms/MiB here), so only common ones.
PREIMPORT = (
    "typing", "re", "math", "collections", "itertools", "functools", "heapq", "bisect", "string", "operator",
    "copy", "random", "json",
)  # fmt: skip

SAFE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",  # deterministic set/dict orders across runs
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@functools.lru_cache(maxsize=1)
def find_bwrap() -> str | None:
    """Path of a bubblewrap that can actually create the namespaces we need here, else None."""
    path = shutil.which("bwrap")
    if not path:
        return None
    cmd = [path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "true"]
    try:
        ok = subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


@functools.lru_cache(maxsize=1)
def _bwrap_has_size(path: str) -> bool:
    try:
        return "--size" in subprocess.run([path, "--help"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return False


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _python_paths() -> list[str]:
    """Directories the interpreter needs: prefixes, standard library, site-packages."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
        os.path.dirname(os.path.abspath(sys.executable)),
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):  # old virtualenv
        paths.update(site.getsitepackages())
    return sorted({os.path.realpath(p) for p in paths if os.path.isdir(p)} | {p for p in paths if os.path.isdir(p)})


def _ancestors(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        out.append(path)
        path = os.path.dirname(path)
    return out


def visible_paths(extra: tuple[str, ...] = ()) -> list[str]:
    """Every host path bound (read-only) into the sandbox, parents before children, covered ones dropped."""
    wanted = [p for p in (*SYSTEM_DIRS, *ETC_FILES) if os.path.lexists(p)]
    wanted += [p for p in (*_python_paths(), INSIDE_DIR, *extra) if p]
    out: list[str] = []
    for p in sorted(set(wanted), key=lambda q: (q.count("/"), q)):
        if not any(_under(p, q) for q in out if not os.path.islink(q)):
            out.append(p)
    return out


def bwrap_argv(bwrap: str, tmp_size: int | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    """bubblewrap prefix: a root holding only :func:`visible_paths` (read-only), a private /tmp, fresh
    /dev and /proc, and new net/pid/ipc/uts namespaces."""
    argv = [bwrap]
    if tmp_size and _bwrap_has_size(bwrap):
        argv += ["--size", str(tmp_size)]
    argv += ["--tmpfs", "/tmp", "--tmpfs", "/var/tmp"]
    paths = visible_paths(extra)
    parents = {os.path.dirname(p) for p in paths}
    for d in sorted({a for p in parents for a in _ancestors(p)}, key=lambda q: (q.count("/"), q)):
        argv += ["--perms", "0755", "--dir", d]  # traversable by the sandbox uids (/root is 0700 on the host)
    for p in paths:
        if os.path.islink(p) and p in SYSTEM_DIRS:  # merged /usr: /bin -> usr/bin
            argv += ["--symlink", os.readlink(p), p]
        else:
            argv += ["--ro-bind", p, p]
    argv += [
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--chdir",
        "/",
    ]
    return argv


UIDS_PER_SLOT = 128


def slot_uids(slot: int) -> tuple[int | None, int | None, int | None]:
    """Unprivileged uids of a slot's own: for sample processes, for the judge kept across samples, and for
    the judges of model-written tests (separate NPROC counts; no signals, rlimit or /proc access across
    them). Root only, else (None, None, None)."""
    if os.geteuid() != 0:
        return None, None, None
    base = 200_000 + (os.getpid() % 5_000) * 64 * UIDS_PER_SLOT + (slot % 64) * UIDS_PER_SLOT
    return base, base + 1, base + 2


# How the timing stage counts instructions: cachegrind (it has no client requests that start, stop or
# reset counting, so a sample cannot switch it), no cache or branch simulation (instruction counts only).
VALGRIND_ARGS = (
    "--tool=cachegrind",
    "--cache-sim=no",
    "--branch-sim=no",
    "--I1=32768,8,64",  # fixed (unused) cache geometry: no host-dependent warnings
    "--D1=32768,8,64",
    "--LL=8388608,16,64",
    "--trace-children=no",
    "--run-libc-freeres=no",  # no guest code of valgrind's own at exit (its work varies with the heap)
    "--run-cxx-freeres=no",
    "-q",
)


@functools.lru_cache(maxsize=1)
def find_valgrind() -> str | None:
    """valgrind's path when it (and its cachegrind tool) is installed here, else None."""
    path = shutil.which("valgrind")
    if not path:
        return None
    try:
        proc = subprocess.run([path, "--tool=cachegrind", "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if proc.returncode == 0 else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "codepref"


@functools.lru_cache(maxsize=1)
def build_jail() -> str | None:
    """The directory holding ``_cpjail`` (the confinement primitives as a C extension, so that sandboxed
    processes need not load ctypes), compiled once per interpreter with gcc and cached under
    ``~/.cache/codepref``; None when no compiler or Python headers are available (ctypes is used then)."""
    cc = shutil.which("gcc") or shutil.which("cc")
    include = sysconfig.get_paths()["include"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    if not cc or not os.path.exists(os.path.join(include, "Python.h")):
        return None
    with open(JAIL_SOURCE, "rb") as fh:
        digest = hashlib.sha256(fh.read() + sys.version.encode() + suffix.encode()).hexdigest()[:12]
    out = cache_dir() / f"jail-{digest}"
    if (out / f"_cpjail{suffix}").exists():
        return str(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            so = Path(tmp) / f"_cpjail{suffix}"
            proc = subprocess.run(
                [cc, "-O2", "-shared", "-fPIC", f"-I{include}", "-o", str(so), JAIL_SOURCE],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if proc.returncode != 0:
                logger.warning("could not build _cpjail (%s); sandboxed processes use ctypes", proc.stderr[-500:])
                return None
            os.chmod(tmp, 0o755)
            os.chmod(so, 0o755)
            with contextlib.suppress(OSError):  # another process built it first
                os.replace(tmp, out)
    except OSError as exc:
        logger.warning("could not build _cpjail (%s); sandboxed processes use ctypes", exc)
        return None
    return str(out) if (out / f"_cpjail{suffix}").exists() else None


def server_argv(settings: SandboxSettings, script: str = SERVER_SCRIPT) -> list[str]:
    return [sys.executable, "-s", "-B", script, settings.encode()]


__all__ = [
    "ALWAYS_LAYERS",
    "BWRAP_LAYERS",
    "PREIMPORT",
    "SAFE_ENV",
    "SandboxSettings",
    "bwrap_argv",
    "find_bwrap",
    "server_argv",
    "slot_uids",
    "visible_paths",
]
