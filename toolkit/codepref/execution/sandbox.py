"""How a fork server is launched: bubblewrap command line, scrubbed environment, per-slot settings."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import site
import subprocess
import sys
import sysconfig

from .config import ExecutionConfig

SERVER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_server.py")
HIDDEN_DIRS = ("/tmp", "/root", "/home", "/run/user", "/var/tmp")
BWRAP_LAYERS = ("bwrap-namespaces(net,pid,ipc,uts)", "readonly-root-fs", "private-tmp", "hidden-home-dirs")
ALWAYS_LAYERS = (
    "rlimits(as,cpu,fsize,nofile,core)",
    "scrubbed-env",
    "process-group-kill",
    "wall-timeout",
    "verdict-channel(nonce+private-fd)",
)

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


def _needed_paths() -> list[str]:
    """Directories the server must still read after the hidden dirs are replaced by empty tmpfs."""
    paths = {
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))),
        os.path.dirname(os.path.abspath(sys.executable)),
        os.path.dirname(os.path.dirname(os.path.dirname(SERVER_SCRIPT))),
    }
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(sysconfig.get_paths()[key])
    with contextlib.suppress(AttributeError):  # old virtualenv
        paths.update(site.getsitepackages())
    home = os.path.expanduser("~")
    hidden = HIDDEN_DIRS + ((home,) if home not in ("/", "") else ())
    out = []
    for p in sorted(paths):
        p = os.path.realpath(p)
        if os.path.isdir(p) and any(_under(p, h) for h in hidden):
            out.append(p)
    # drop paths already covered by a parent in the list
    return [p for p in out if not any(q != p and _under(p, q) for q in out)]


def bwrap_argv(bwrap: str, tmp_size: int | None = None) -> list[str]:
    """bubblewrap prefix: read-only root, private /tmp, hidden home dirs, new net/pid/ipc/uts namespaces."""
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    home = os.path.expanduser("~")
    hidden = [d for d in HIDDEN_DIRS if os.path.isdir(d)]
    if home not in ("/", "") and os.path.isdir(home) and not any(_under(home, h) for h in hidden):
        hidden.append(home)
    for d in hidden:
        if d == "/tmp" and tmp_size and _bwrap_has_size(bwrap):
            argv += ["--size", str(tmp_size)]
        argv += ["--tmpfs", d]
    made: set[str] = set()
    for p in _needed_paths():
        parent = os.path.dirname(p)
        chain = []
        while parent not in ("/", "") and not any(parent == h for h in hidden):
            chain.append(parent)
            parent = os.path.dirname(parent)
        for d in reversed(chain):
            if d not in made:
                argv += ["--perms", "0755", "--dir", d]
                made.add(d)
        argv += ["--ro-bind", p, p]
    argv += [
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


def server_settings(
    cfg: ExecutionConfig,
    *,
    uid: int | None,
    seccomp: bool,
    unshare_net: bool,
    tmp_root: str,
    preimport: str = "lean",
) -> dict:
    """Settings handed to one fork server (marshalled, hex-encoded on its command line)."""
    return {
        "uid": uid,
        "seccomp": seccomp,
        "preimport": preimport,
        "unshare_net": unshare_net,
        "tmp_root": tmp_root,
        "timeout": float(cfg.timeout),
        "cpu_seconds": cfg.cpu_seconds,
        "memory_bytes": int(cfg.memory_mb) * 1024 * 1024,
        "max_output_bytes": int(cfg.max_output_bytes),
        "max_open_files": int(cfg.max_open_files),
        "max_processes": int(cfg.max_processes),
        "tail_bytes": int(cfg.stderr_tail_bytes),
    }


def slot_uid(slot: int) -> int | None:
    """An unprivileged uid of its own per slot (separate NPROC count, no signals across slots); root only."""
    if os.geteuid() != 0:
        return None
    return 200000 + (os.getpid() % 100000) * 64 + slot % 64
