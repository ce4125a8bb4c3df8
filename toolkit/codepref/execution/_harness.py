"""Child side of the fork server: confine the freshly forked process, run the sample, report verdicts.

Standalone on purpose (imported as a top-level module by the fork server, before any untrusted code runs).
Verdicts go to a pipe the server keeps, each prefixed by a per-child random nonce, and are written only
after a unit's code returned normally; the exit status and stdout are never trusted for a pass.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import errno
import io
import os
import resource
import signal
import struct
import sys
import traceback
import types

PASS, FAIL, ERROR, TIMEOUT, SYNTAX, KILLED = range(6)
PROGRAM = 0xFFFFFFFF  # verdict index for "program and setup executed"
VERDICT = struct.Struct("<IB")
_LIMIT_ERRNOS = (errno.EFBIG, errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM)
_PR_SET_PDEATHSIG = 1

_exec, _compile, _isinstance, _write, _getpid, _exit = (
    exec,
    compile,
    isinstance,
    os.write,
    os.getpid,
    os._exit,
)
_ModuleType, _AssertionError, _MemoryError = types.ModuleType, AssertionError, MemoryError
_SyntaxError, _SystemExit, _BaseException, _OSError = SyntaxError, SystemExit, BaseException, OSError
_libc = ctypes.CDLL(None, use_errno=True)


def classify(exc: BaseException) -> int:
    """Outcome code of an exception raised by a test unit."""
    if _isinstance(exc, _AssertionError):
        return FAIL
    if _isinstance(exc, _MemoryError):
        return KILLED
    if _isinstance(exc, _OSError) and exc.errno in _LIMIT_ERRNOS:
        return KILLED
    return ERROR


def _compile_program(src: str, name: str) -> types.CodeType:
    return _compile(src, name, "exec", dont_inherit=True, optimize=0)


# -- forged equality -------------------------------------------------------------------------------
# ``assert candidate(x) == expected`` passes for any object whose ``__eq__`` always returns True. Test
# units are compiled with each ``assert A == B`` rewritten to ``assert <guard>(A, B)``: when one side is
# plain data (builtins, nested in builtin containers), a True comparison only counts if no object
# reachable from the other side has a type whose ``__eq__`` is written in Python outside a real source
# file (i.e. by the sample).
# Other values (numpy scalars, stdlib types) compare exactly as before. The guard's name is random
# per process, and everything it uses was bound before any sample code ran.
_type, _getattr, _id, _len, _set, _issubclass = type, getattr, id, len, set, issubclass
_PLAIN = frozenset((int, float, complex, bool, str, bytes, type(None), list, tuple, dict, set, frozenset))
_ITER = ((list, list.__iter__), (tuple, tuple.__iter__), (set, set.__iter__), (frozenset, frozenset.__iter__))
_dict_keys, _dict_values = dict.keys, dict.values
_MAX_NODES = 100_000


def _sample_defined_eq(t: type) -> bool:
    code = _getattr(_getattr(t, "__eq__", None), "__code__", None)
    if code is None:
        return False  # C implementation (builtins, numpy, ...)
    name = code.co_filename
    return not name or name.startswith("<")


def _walk(root: object) -> tuple[bool, bool]:
    """(every reachable object is plain data, some reachable object's type has a sample-written __eq__)."""
    stack, seen, n = [root], _set(), 0
    plain, forged = True, False
    while stack and n < _MAX_NODES:
        obj = stack.pop()
        if _id(obj) in seen:
            continue
        seen.add(_id(obj))
        n += 1
        t = _type(obj)
        plain = plain and t in _PLAIN
        forged = forged or _sample_defined_eq(t)
        if _issubclass(t, dict):
            stack.extend(_dict_keys(obj))
            stack.extend(_dict_values(obj))
            continue
        for base, it in _ITER:
            if _issubclass(t, base):  # the base type's own iterator: a subclass cannot hide elements
                stack.extend(it(obj))
                break
    return plain, forged


def _guarded_eq(a: object, b: object) -> object:
    result = a == b
    if not result:
        return result
    try:  # either side may be the sample's value: `candidate(x) == 3` or `3 == candidate(x)`
        (a_plain, a_forged), (b_plain, b_forged) = _walk(a), _walk(b)
        forged = (b_plain and a_forged) or (a_plain and b_forged)
    except _BaseException:  # noqa: BLE001 - an object that resists inspection does not pass
        forged = True
    if forged:
        raise _AssertionError("the value's type defines its own __eq__; compared with plain data")
    return result


_BODIES = ("body", "orelse", "finalbody", "handlers", "cases")


def _guard_asserts(stmts: list, guard: str) -> None:
    """Rewrite ``assert A == B`` in place; walks statements only (expressions never hold asserts)."""
    for node in stmts:
        if _isinstance(node, ast.Assert):
            t = node.test
            if _isinstance(t, ast.Compare) and _len(t.ops) == 1 and _isinstance(t.ops[0], ast.Eq):
                call = ast.Call(ast.Name(guard, ast.Load()), [t.left, t.comparators[0]], [])
                node.test = ast.copy_location(call, t)
            continue
        for field in _BODIES:
            inner = _getattr(node, field, None)
            if inner:
                _guard_asserts(inner, guard)


def _compile_unit(src: str, name: str, guard: str) -> types.CodeType:
    """A test unit, with ``assert A == B`` checked by the guard (plain compile if it does not parse)."""
    try:
        if "==" not in src:
            return _compile_program(src, name)
        tree = ast.parse(src, name)
        _guard_asserts(tree.body, guard)
        return _compile(ast.fix_missing_locations(tree), name, "exec", dont_inherit=True, optimize=0)
    except _BaseException:  # noqa: BLE001 - the plain compile reports the error
        return _compile_program(src, name)


def _log(msg: str) -> None:
    try:
        sys.stderr.write(msg)
        sys.stderr.flush()
    except _BaseException:  # noqa: BLE001 - user objects may misbehave while formatting
        pass


def _log_exc(label: str, exc: BaseException) -> None:
    try:
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None
        text = "".join(traceback.format_exception(type(exc), exc, tb, limit=-3))
    except _BaseException:  # noqa: BLE001
        text = f"{type(exc).__name__}\n"
    _log(f"[{label}] {text}")


def _make_reporter(fd: int, nonce: bytes, pid: int):
    pack = VERDICT.pack

    def report(idx: int, code: int) -> None:
        if _getpid() != pid:  # a process the program forked never reports
            _exit(0)
        _write(fd, nonce + pack(idx, code))

    return report


def _fresh_module(name: str) -> dict:
    mod = _ModuleType(name)
    sys.modules["__main__"] = mod
    ns = mod.__dict__
    ns["__builtins__"] = builtins
    return ns


def _confine(spec: dict, seccomp_filter) -> None:
    """Process group, stdio, fds, cwd, rlimits, unprivileged user, seccomp (in that order)."""
    os.setsid()
    for target, fd in enumerate((spec["stdin_fd"], spec["stdout_fd"], spec["stderr_fd"])):
        os.dup2(fd, target)
    vfd = 300 + int.from_bytes(os.urandom(2), "little") % 700
    os.dup2(spec["verdict_fd"], vfd)
    os.closerange(3, vfd)
    os.closerange(vfd + 1, 1 << 16)
    spec["verdict_fd"] = vfd
    os.chdir(spec["tmpdir"])
    cpu_hard = spec["cpu_hard"]
    limits = [
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_FSIZE, spec["max_output_bytes"]),
        (resource.RLIMIT_NOFILE, spec["max_open_files"]),
        (resource.RLIMIT_CPU, cpu_hard),
    ]
    if spec["memory_bytes"]:
        limits.append((resource.RLIMIT_AS, spec["memory_bytes"]))
    if spec["uid"] is not None:
        limits.append((resource.RLIMIT_NPROC, spec["max_processes"]))
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            if which != resource.RLIMIT_NOFILE:
                raise
            # under valgrind (timing stage) only the soft fd limit may change; valgrind enforces it
            resource.setrlimit(which, (value, resource.getrlimit(which)[1]))
    uid = spec["uid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if seccomp_filter is not None:
        seccomp_filter.load(os.getpid())
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # output/file cap kills (CPython ignores it by default)


def install_stdio() -> None:
    """Fresh, empty text streams on fds 0/1/2; called once in the server so children inherit them ready."""
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8")
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
    )
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _cpu_budget(seconds: int) -> None:
    """Per-unit CPU limit: the soft RLIMIT_CPU is moved to (used so far + budget)."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(ru.ru_utime + ru.ru_stime) + 1 + seconds
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))


def _run_asserts(spec: dict, report) -> None:
    prog_src, setup_src, tests, start = spec["program"], spec["setup"], spec["units"], spec["start"]
    cpu = spec["cpu_seconds"]
    first_ns = None
    try:
        prog = _compile_program(prog_src, "<solution>")
    except _MemoryError:
        report(PROGRAM, KILLED)
        return
    except _BaseException as exc:  # SyntaxError, ValueError (NUL bytes), RecursionError (deep nesting)
        report(PROGRAM, SYNTAX)
        _log_exc("compile", exc)
        return
    try:
        setup = _compile_program(setup_src, "<setup>")
    except _BaseException as exc:  # noqa: BLE001
        report(PROGRAM, ERROR)
        _log_exc("setup", exc)
        return
    if start == 0:
        _cpu_budget(cpu)
        first_ns = _fresh_module("solution")
        try:
            _exec(prog, first_ns)
            _exec(setup, first_ns)
        except _BaseException as exc:  # noqa: BLE001 - SystemExit and friends before the tests are errors
            report(PROGRAM, KILLED if classify(exc) == KILLED else ERROR)
            _log_exc("program", exc)
            return
        report(PROGRAM, PASS)
    guard = "_cp_eq_" + os.urandom(8).hex()
    for i in range(start, len(tests)):
        _cpu_budget(cpu)
        try:
            test = _compile_unit(tests[i], f"<test {i}>", guard)
        except _BaseException as exc:  # noqa: BLE001
            report(i, ERROR)
            _log_exc(f"test {i} compile", exc)
            continue
        ns, first_ns = first_ns, None
        try:
            if ns is None:
                ns = _fresh_module("solution")
                _exec(prog, ns)
                _exec(setup, ns)
            ns[guard] = _guarded_eq
            _exec(test, ns)
        except _BaseException as exc:  # noqa: BLE001
            report(i, classify(exc))
            _log_exc(f"test {i}", exc)
            continue
        report(i, PASS)


def _run_io(spec: dict, report) -> None:
    try:
        prog = _compile_program(spec["program"], "<solution>")
    except _MemoryError:
        report(0, KILLED)
        return
    except _BaseException as exc:  # noqa: BLE001
        report(0, SYNTAX)
        _log_exc("compile", exc)
        return
    _cpu_budget(spec["cpu_seconds"])
    code = PASS
    try:
        _exec(prog, _fresh_module("__main__"))
    except _SystemExit as exc:
        if exc.code not in (None, 0):
            code = ERROR
            _log(f"[run] SystemExit({exc.code!r})\n")
    except _BaseException as exc:  # noqa: BLE001
        code = classify(exc)
        _log_exc("run", exc)
    try:
        sys.stdout.flush()
    except _BaseException as exc:  # noqa: BLE001
        code = classify(exc) if code == PASS else code
    report(0, code)


def child_main(spec: dict, seccomp_filter) -> None:
    """Entry point of a forked child; never returns."""
    try:
        _confine(spec, seccomp_filter)
    except BaseException:  # noqa: BLE001 - no sandbox, no run
        os._exit(71)
    report = _make_reporter(spec["verdict_fd"], spec["nonce"], os.getpid())
    del spec["nonce"]
    try:
        (_run_io if spec["mode"] == "io" else _run_asserts)(spec, report)
    finally:
        _exit(0)
