"""A hand-assembled classic-BPF seccomp filter, compiled once and loaded per child with ``prctl``.

Standalone on purpose (no package-relative imports): imported as a top-level module inside the sandbox.

Policy (everything else is allowed):
  * killed (``SIGSYS``, recorded as KILLED): ``execve``/``execveat`` (no new programs), ``ptrace``,
    ``process_vm_*``, sockets of any family except ``AF_UNIX``, module/kexec/reboot/bpf/perf/keyctl calls;
  * refused with ``EPERM``: namespace and mount calls (``unshare``, ``setns``, ``mount``, ``clone`` with
    namespace flags), ``setsid``/``setpgid`` (so nothing escapes the process group that is killed),
    signals (``kill``/``tgkill``) to any process outside the sandboxed sample's own process/group,
    ``tkill``, ``pidfd_send_signal``;
  * refused with ``EPERM``: SysV IPC (``shmget``, ``msgget``, ``semget`` and their operations) and POSIX
    message queues, so no sample can leave IPC state behind for the next one;
  * refused with ``EPERM``: signals carrying data (``rt_sigqueueinfo``, ``rt_tgsigqueueinfo``);
  * ``clone3`` answers ``ENOSYS`` so glibc falls back to ``clone``, whose flags can be inspected.

``compile_timing_filter`` is stacked on top for a timed run (the timing stage): it also refuses new
processes (threads stay allowed: their CPU time is the process's), executable memory the sample could
write (``mprotect`` with ``PROT_EXEC``, ``memfd_create``), and changing what a path is (``chmod``,
``mknod``, ``symlink``, ``link``), so the measurement's own files keep their meaning.
"""

from __future__ import annotations

import errno
import platform
import struct

# seccomp_data offsets: nr (int) @0, arch (u32) @4, ip (u64) @8, args[6] (u64) @16
_NR, _ARCH = 0, 4


def _arg_lo(i: int) -> int:
    return 16 + 8 * i  # low 32 bits of argument i (little endian)


RET_KILL = 0x80000000  # SECCOMP_RET_KILL_PROCESS
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | errno.EPERM
RET_ENOSYS = 0x00050000 | errno.ENOSYS

_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
_NS_FLAGS = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,
        {
            "execve": 59,
            "execveat": 322,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "socket": 41,
            "kill": 62,
            "tkill": 200,
            "tgkill": 234,
            "pidfd_send_signal": 424,
            "setsid": 112,
            "setpgid": 109,
            "unshare": 272,
            "setns": 308,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "clone": 56,
            "clone3": 435,
            "bpf": 321,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "init_module": 175,
            "finit_module": 313,
            "kexec_load": 246,
            "reboot": 169,
            "personality": 135,
            "io_uring_setup": 425,
            "shmget": 29,
            "shmat": 30,
            "shmctl": 31,
            "shmdt": 67,
            "semget": 64,
            "semop": 65,
            "semctl": 66,
            "semtimedop": 220,
            "msgget": 68,
            "msgsnd": 69,
            "msgrcv": 70,
            "msgctl": 71,
            "mq_open": 240,
            "mq_unlink": 241,
            "mq_timedsend": 242,
            "mq_timedreceive": 243,
            "mq_notify": 244,
            "mq_getsetattr": 245,
            "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297,
            "fork": 57,
            "vfork": 58,
            "mprotect": 10,
            "mmap": 9,
            "pkey_mprotect": 329,
            "memfd_create": 319,
            "chmod": 90,
            "fchmod": 91,
            "fchmodat": 268,
            "mknod": 133,
            "mknodat": 259,
            "symlink": 88,
            "symlinkat": 266,
            "link": 86,
            "linkat": 265,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "execve": 221,
            "execveat": 281,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "socket": 198,
            "kill": 129,
            "tkill": 130,
            "tgkill": 131,
            "pidfd_send_signal": 424,
            "setsid": 157,
            "setpgid": 154,
            "unshare": 97,
            "setns": 268,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "clone": 220,
            "clone3": 435,
            "bpf": 280,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "init_module": 105,
            "finit_module": 273,
            "kexec_load": 104,
            "reboot": 142,
            "personality": 92,
            "io_uring_setup": 425,
            "shmget": 194,
            "shmat": 196,
            "shmctl": 195,
            "shmdt": 197,
            "semget": 190,
            "semop": 193,
            "semctl": 191,
            "semtimedop": 192,
            "msgget": 186,
            "msgsnd": 189,
            "msgrcv": 188,
            "msgctl": 187,
            "mq_open": 180,
            "mq_unlink": 181,
            "mq_timedsend": 182,
            "mq_timedreceive": 183,
            "mq_notify": 184,
            "mq_getsetattr": 185,
            "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240,
            "mprotect": 226,
            "mmap": 222,
            "pkey_mprotect": 288,
            "memfd_create": 279,
            "fchmod": 52,
            "fchmodat": 53,
            "mknodat": 33,
            "symlinkat": 36,
            "linkat": 37,
        },
    ),
}
_ARCHES["amd64"] = _ARCHES["x86_64"]
_ARCHES["arm64"] = _ARCHES["aarch64"]

_KILLED = (
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "init_module",
    "finit_module",
    "kexec_load",
    "reboot",
    "io_uring_setup",
)
_REFUSED = (
    "setsid",
    "setpgid",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "tkill",
    "pidfd_send_signal",
    "userfaultfd",
    "personality",
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
)

_PID_SLOT = 0xDEADBEEF  # placeholder constants patched per child
_NEG_PID_SLOT = 0xBEEFDEAD


class _Asm:
    """Tiny assembler: instructions with symbolic jump targets resolved into relative offsets."""

    def __init__(self) -> None:
        self.ins: list[tuple[int, object, object, int]] = []
        self.labels: dict[str, int] = {}

    def label(self, name: str) -> None:
        self.labels[name] = len(self.ins)

    def op(self, code: int, k: int, jt: object = 0, jf: object = 0) -> None:
        self.ins.append((code, jt, jf, k))

    def assemble(self) -> bytes:
        out = bytearray()
        for pc, (code, jt, jf, k) in enumerate(self.ins):
            offs = []
            for j in (jt, jf):
                off = self.labels[j] - pc - 1 if isinstance(j, str) else int(j)
                if not 0 <= off <= 255:
                    raise ValueError("BPF jump out of range")
                offs.append(off)
            out += struct.pack("=HBBI", code, offs[0], offs[1], k & 0xFFFFFFFF)
        return bytes(out)


class SeccompFilter:
    """A compiled filter; :meth:`load` installs it in the calling process (irreversible)."""

    def __init__(self, program: bytes, pid_offsets: list[int], neg_offsets: list[int]) -> None:
        self.program = program
        self._pid_offsets = pid_offsets
        self._neg_offsets = neg_offsets

    def load(self, pid: int) -> None:
        """Allow signals only to ``pid``'s own process/group, then install the filter (raises OSError)."""
        import confine

        buf = bytearray(self.program)
        for off in self._pid_offsets:
            struct.pack_into("=I", buf, off + 4, pid)
        for off in self._neg_offsets:
            struct.pack_into("=I", buf, off + 4, (-pid) & 0xFFFFFFFF)
        confine.jail().load_filter(bytes(buf))


def _prologue(machine: str | None) -> tuple[_Asm, str, dict[str, int]]:
    """A program that kills a call of another architecture and loads the syscall number: (asm, machine,
    syscall numbers)."""
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise RuntimeError(f"no seccomp syscall table for architecture {machine!r}")
    audit_arch, nr = _ARCHES[machine]
    a = _Asm()
    a.op(_LD_ABS, _ARCH)
    a.op(_JEQ, audit_arch, 0, "kill")
    a.op(_LD_ABS, _NR)
    return a, machine, nr


def _returns(a: _Asm) -> None:
    """The ``allow``, ``kill`` and ``eperm`` exits."""
    a.label("allow")
    a.op(_RET, RET_ALLOW)
    a.label("kill")
    a.op(_RET, RET_KILL)
    a.label("eperm")
    a.op(_RET, RET_EPERM)


def compile_filter(machine: str | None = None) -> SeccompFilter:
    """Assemble the policy for this machine's architecture (raises RuntimeError when unsupported)."""
    a, machine, nr = _prologue(machine)
    if machine in ("x86_64", "amd64"):
        a.op(_JGE, 0x40000000, "kill", 0)  # x32 ABI
    for name in _KILLED:
        a.op(_JEQ, nr[name], "kill", 0)
    for name in _REFUSED:
        a.op(_JEQ, nr[name], "eperm", 0)
    a.op(_JEQ, nr["clone3"], "enosys", 0)
    a.op(_JEQ, nr["socket"], "socket", 0)
    a.op(_JEQ, nr["clone"], "clone", 0)
    a.op(_JEQ, nr["kill"], "kill_sig", 0)
    a.op(_JEQ, nr["tgkill"], "tgkill", 0)
    a.op(_RET, RET_ALLOW)
    a.label("socket")  # socket(family, ...): only AF_UNIX (1)
    a.op(_LD_ABS, _arg_lo(0))
    a.op(_JEQ, 1, "allow", "kill")
    a.label("clone")  # clone(flags, ...): no new namespaces
    a.op(_LD_ABS, _arg_lo(0))
    a.op(_JSET, _NS_FLAGS, "eperm", "allow")
    pid_offsets, neg_offsets = [], []
    a.label("kill_sig")  # kill(pid, sig): pid in {0, self, -self}
    a.op(_LD_ABS, _arg_lo(0))
    a.op(_JEQ, 0, "allow", 0)
    pid_offsets.append(len(a.ins))
    a.op(_JEQ, _PID_SLOT, "allow", 0)
    neg_offsets.append(len(a.ins))
    a.op(_JEQ, _NEG_PID_SLOT, "allow", "eperm")
    a.label("tgkill")  # tgkill(tgid, tid, sig): own thread group only
    a.op(_LD_ABS, _arg_lo(0))
    pid_offsets.append(len(a.ins))
    a.op(_JEQ, _PID_SLOT, "allow", "eperm")
    _returns(a)
    a.label("enosys")
    a.op(_RET, RET_ENOSYS)
    return SeccompFilter(a.assemble(), [8 * i for i in pid_offsets], [8 * i for i in neg_offsets])


_TIMING_REFUSED = (
    "fork", "vfork", "memfd_create", "chmod", "fchmod", "fchmodat", "mknod", "mknodat", "symlink", "symlinkat",
    "link", "linkat",
)  # fmt: skip
_CLONE_THREAD, _PROT_EXEC, _MAP_ANONYMOUS = 0x00010000, 0x4, 0x20


def compile_timing_filter(machine: str | None = None, *, valgrind: bool = False) -> bytes:
    """The extra policy of a timed run (see the module docstring), as a BPF program. ``valgrind``: the
    process runs under valgrind, whose translation cache grows by anonymous executable mappings, so
    ``mmap`` is left alone (the sample's code is translated by valgrind, and ctypes is not there)."""
    a, _, nr = _prologue(machine)
    for name in _TIMING_REFUSED:
        if name in nr:
            a.op(_JEQ, nr[name], "eperm", 0)
    a.op(_JEQ, nr["clone"], "clone", 0)
    a.op(_JEQ, nr["mprotect"], "prot", 0)
    a.op(_JEQ, nr["pkey_mprotect"], "prot", 0)
    if not valgrind:
        a.op(_JEQ, nr["mmap"], "map", 0)
    a.op(_RET, RET_ALLOW)
    if not valgrind:
        a.label("map")  # mmap(addr, len, prot, flags, ...): executable only when it maps a file (libraries)
        a.op(_LD_ABS, _arg_lo(2))
        a.op(_JSET, _PROT_EXEC, 0, "allow")
        a.op(_LD_ABS, _arg_lo(3))
        a.op(_JSET, _MAP_ANONYMOUS, "eperm", "allow")
    a.label("clone")  # threads only
    a.op(_LD_ABS, _arg_lo(0))
    a.op(_JSET, _CLONE_THREAD, "allow", "eperm")
    a.label("prot")  # mprotect(addr, len, prot): never executable
    a.op(_LD_ABS, _arg_lo(2))
    a.op(_JSET, _PROT_EXEC, "eperm", "allow")
    _returns(a)
    return a.assemble()
