"""The sample's process: compile and run the program, then answer the judge's requests with plain data.

Standalone on purpose: imported as a top-level module inside the sandbox, and run in a freshly forked,
confined child (see ``zygote``). Descriptors: 0 stdin, 1 stdout, 2 stderr, 3 the channel to the judge (or
to the server for ``inproc``), 4 the status pipe to the server.

The status pipe carries one byte written *before any sample code runs* (``C`` compiled, ``S`` syntax
error, ``K`` compilation ran out of memory: the server trusts it) and then one byte after the program
ran (``R`` ready, ``E`` raised, ``K`` ran out of memory). The second byte is written after sample code ran,
so the server only lets it fail the sample's own units (a sample can always fail itself).

Everything after compilation runs in a process the sample controls: nothing here is trusted. The
judge treats every answer as the sample's own return value and decodes it strictly (``wire.from_tree``).
"""

from __future__ import annotations

import builtins
import gc
import json
import os
import random
import sys
import types

# bound now: the sample may rewrite ``builtins`` (see ``wire``)
from builtins import (  # noqa: UP029
    BaseException,
    StopIteration,
    dict,
    exec,
    getattr,
    hasattr,
    int,
    isinstance,
    iter,
    len,
    list,
    max,
    min,
    next,
    range,
    set,
    str,
    type,
)

import confine
import wire

wire.bind_builtins(random)
DATA_FD, STATUS_FD = 3, 4
EXIT_OK, EXIT_ERROR, EXIT_KILLED = 0, 1, 3
_MAX_DRAW = 4096  # items per iterator request


def fresh_module(name: str) -> dict:
    """A new module registered as ``__main__``: the namespace a program runs in."""
    mod = types.ModuleType(name)
    sys.modules["__main__"] = mod
    ns = mod.__dict__
    ns["__builtins__"] = builtins
    return ns


def _receive() -> str:
    """The program (and stdin input) the server sends first on the channel."""
    try:
        msg = wire.loads(wire.recv_msg(DATA_FD, 1 << 30))
        program, stdin = str(msg[1]), msg[2]
    except (EOFError, OSError, wire.Refused, IndexError):
        os._exit(0)
    if stdin is not None:
        fd = os.memfd_create("stdin", 0)
        wire.write_all(fd, str(stdin).encode("utf-8", "surrogateescape"))
        os.lseek(fd, 0, os.SEEK_SET)
        os.dup2(fd, 0)
        os.close(fd)
    return program


def _compile(program: str, report: bool = True) -> types.CodeType | None:
    """Compile and report on the status pipe (``C`` only when ``report``); None when it does not compile."""
    try:
        code = compile(program, "<solution>", "exec", dont_inherit=True, optimize=0)
    except MemoryError:
        os.write(STATUS_FD, b"K")
        return None
    except BaseException as exc:  # noqa: BLE001 - SyntaxError, ValueError (NUL), RecursionError (nesting)
        confine.log_exc("compile", exc)  # first: the server ends this process once it reads the status
        os.write(STATUS_FD, b"S")
        return None
    if report:
        os.write(STATUS_FD, b"C")
    return code


def _timed_start(timed: dict) -> None:
    """The start of a timed run, before any sample code: for a counted run, a snapshot of the instruction
    count (a child that exits at once, so valgrind writes the count so far to that child's own file);
    then the timing filter (no new processes, no executable memory, no changing what a path is); then
    ``C`` and the snapshot's pid on the status pipe. The server reads this process's CPU clock (and the
    snapshot) while it waits for its first request, and again after the last answer of the run."""
    if not timed.get("counted"):
        _warm_harness()
    gc.collect()  # the garbage collector's counts start from zero: its passes fall at the same points every run
    gc.disable()
    snap = 0
    if timed.get("counted"):
        snap = os.fork()
        if snap == 0:
            os._exit(0)
        os.waitpid(snap, 0)
    confine.jail().load_filter(timed["filter"])
    os.write(STATUS_FD, b"C" + snap.to_bytes(4, "little"))


def _warm_harness() -> None:
    """Before a CPU-timed run's clock starts: the harness's own code paths once each (a throwaway server
    loading a throwaway program, answering requests into /dev/null), so the copy-on-write faults, cold
    caches and first-call work of this fresh process are not in the sample's CPU time (they were most of
    a µs-scale program's time, and most of its noise). No sample code runs here."""
    warm = Server(compile("def w(*a, **k):\n    return a\n", "<warm>", "exec"), 0, 1 << 20, timed=True)
    null = os.open(os.devnull, os.O_WRONLY)
    warm.chan = wire.Channel(null, 1 << 20)
    call = ["call", ["n", "w"], [1, 2.5, "s", None, True, ["l", 1, ["t", 2]]], [["k", 1]]]
    requests = [["hello"], ["get", "w"], call]
    for _ in range(3):
        for req in requests:
            reply = warm.handle(wire.loads(wire.dumps(req)))
            if reply is not None:
                warm.send(reply)
    os.close(null)


# sys.getrefcount of a watched argument nothing but the watch holds (the entry's list, the call's argument)
_WATCH_ONLY_REFS = 2


def _exc_reply(exc: BaseException) -> list:
    try:
        names = [c.__name__ for c in type(exc).__mro__][:16]
        text = str(exc)[:2000]
    except BaseException:  # noqa: BLE001
        names, text = ["Exception"], ""
    return ["raise", names, text]


class Callback:
    """A callable of the judge (a lambda or function a test passed in): calling it asks the judge."""

    __slots__ = ("_cp_server", "_cp_id")

    def __init__(self, server: Server, cid: int) -> None:
        self._cp_server, self._cp_id = server, cid

    def __call__(self, *args, **kwargs):
        return self._cp_server.callback(self._cp_id, args, kwargs)


class Server:
    """Answers the judge: get a global, call, read an attribute or item, iterate, convert to str/int/..."""

    def __init__(
        self, code: types.CodeType, cpu_seconds: int, limit: int, timed: bool = False, counted: bool = False
    ) -> None:
        self.code, self.cpu, self.limit, self.timed = code, cpu_seconds, limit, timed
        self.chan = wire.Channel(DATA_FD, 1 << 30, exact=counted)
        self.objs: dict[int, object] = {}
        self.next_id = 0
        self.failed: list | None = None
        self.ns: dict = {}
        self.loaded = False
        # the judge's mutable arguments (lists, dicts, sets) this unit received, by the judge's id: [object, its
        # last state sent]; after every answer the changed ones go back, so the judge's own objects change as
        # they would in one process (in the call, after it raised, later through a kept reference, inside
        # a generator the judge iterates)
        self.watch: dict[int, list] = {}

    def load(self) -> None:
        """Run the program in a fresh module (each test unit starts from one)."""
        self.loaded = True
        self.objs.clear()
        self.watch.clear()
        if not self.timed:  # an armed CPU timer makes the process CPU clock tick-granular: not in timed runs
            confine.cpu_budget(self.cpu)
        random.seed(0)  # a sample that draws random numbers gives the same answers every run
        self.ns = fresh_module("solution")
        try:
            exec(self.code, self.ns)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends before the tests are errors
            self.failed = ["failed", wire.KILLED if wire.classify(exc) == wire.KILLED else wire.ERROR]
            confine.log_exc("program", exc)
        else:
            self.failed = None

    # -- values ----------------------------------------------------------------------------------------
    def _ref_out(self, obj: object) -> list:
        if type(obj) is Callback:
            return ["g", obj._cp_id]
        self.next_id += 1
        hid = self.next_id
        self.objs[hid] = obj
        return ["I" if hasattr(type(obj), "__next__") else "h", hid]

    def _ref_in(self, tag: str, hid: int | str) -> object:
        if tag == "g":
            return Callback(self, hid)
        if tag == "n":
            if hid not in self.ns:
                raise NameError(f"name {hid!r} is not defined")
            return self.ns[hid]
        if hid not in self.objs:
            raise wire.Refused("unknown reference")
        return self.objs[hid]

    def tree(self, v: object) -> object:
        return wire.to_tree(v, self._ref_out)

    def value(self, t: object) -> object:
        return wire.from_tree(t, self._ref_in)

    # -- channel ---------------------------------------------------------------------------------------
    def send(self, reply: list) -> None:
        """Queue an answer; it leaves when no further request is already waiting (or before blocking)."""
        try:
            data = wire.dumps(reply)
        except BaseException as exc:  # noqa: BLE001 - nan keys, recursion, ...
            data = wire.dumps(["bad", f"cannot encode the value ({type(exc).__name__})"])
        if len(data) > self.limit:
            data = wire.dumps(["bad", f"value of {len(data)} bytes exceeds {self.limit}"])
        self.chan.queue(data)
        if self.timed or not self.chan.ready():
            self.chan.flush()

    def recv(self) -> list:
        return wire.loads(self.chan.recv())

    def callback(self, cid: int, args: tuple, kwargs: dict):
        request = ["cb", cid, [self.tree(a) for a in args], [[k, self.tree(v)] for k, v in kwargs.items()]]
        self.send(self._with_changes(request))
        self.chan.flush()
        while True:
            msg = self.recv()
            if msg[0] == "ok":
                return self.value(msg[1])
            if msg[0] == "raise":
                base = getattr(builtins, str(msg[1][0]) if msg[1] else "", None)
                if not (isinstance(base, type) and issubclass(base, Exception)):
                    base = Exception
                raise base(msg[2] if len(msg) > 2 else "")
            reply = self.handle(msg)
            if reply is not None:
                self.send(reply)

    def serve(self) -> None:
        while True:
            try:
                msg = self.recv()
            except (EOFError, OSError):
                os._exit(0)
            reply = self.handle(msg)
            if reply is not None:
                self.send(reply)

    # -- requests --------------------------------------------------------------------------------------
    def handle(self, msg: list) -> list | None:
        op = msg[0]
        if op == "reset":
            self.load()
            return self.failed or ["loaded"]
        if op == "hello":
            if not self.loaded:  # a timed run loads the program on the judge's first request
                self.load()
            return self.failed or ["loaded"]
        if self.failed:
            return self.failed
        try:
            reply = self._dispatch(op, msg)
        except wire.Refused as exc:
            reply = ["bad", str(exc)]
        except BaseException as exc:  # noqa: BLE001 - the sample's exception is its answer
            confine.log_exc(op, exc)
            reply = _exc_reply(exc)
        return self._with_changes(reply)

    def _with_changes(self, reply: list) -> list:
        """``reply``, preceded by the watched arguments whose state changed: ``["chg", [[id, state], ...], reply]``.
        An argument only the watch still holds cannot change again: it is sent a last time if changed, then dropped."""
        if not self.watch:
            return reply
        changes = []
        for wid, entry in list(self.watch.items()):
            try:
                tree = self.tree(entry[0])
                data = wire.dumps(tree)
            except BaseException:  # noqa: BLE001 - a state that cannot cross is not sent
                continue
            if data != entry[1]:
                entry[1] = data
                changes.append([wid, tree])
            if sys.getrefcount(entry[0]) <= _WATCH_ONLY_REFS:
                del self.watch[wid]
        return ["chg", changes, reply] if changes else reply

    def _call(self, msg: list) -> list:
        fn = self.value(msg[1])
        args = [self.value(a) for a in msg[2]]
        kwargs = {str(k): self.value(v) for k, v in msg[3]}
        for pair in msg[4] if len(msg) > 4 and type(msg[4]) is list else ():  # [argument key, the judge's id]
            if type(pair) is list and len(pair) == 2 and type(pair[1]) is int:
                key, wid = pair
                a = args[key] if type(key) is int and 0 <= key < len(args) else kwargs.get(key)
                if type(a) in (list, dict, set):
                    self.watch[wid] = [a, wire.dumps(self.tree(a))]
        return ["ok", self.tree(fn(*args, **kwargs))]

    def _dispatch(self, op: str, msg: list) -> list:
        if op == "get":
            name = msg[1]
            if type(name) is not str or name.startswith("__") or name not in self.ns:
                return ["missing"]
            v = self.ns[name]
            if isinstance(v, types.ModuleType):
                return ["module", str(getattr(v, "__name__", ""))]
            tree = self.tree(v)
            if type(tree) is list and tree[0] == "h":  # a function, class or object: by name, valid after reloads
                self.objs.pop(tree[1], None)
                tree = ["n", name]
            return ["ok", tree]
        if op == "call":
            return self._call(msg)
        if op == "attr":
            return ["ok", self.tree(getattr(self.value(msg[1]), str(msg[2])))]
        if op == "item":
            return ["ok", self.tree(self.value(msg[1])[self.value(msg[2])])]
        if op == "unary":
            obj, what = self.value(msg[1]), msg[2]
            fn = {
                "bool": bool,
                "len": len,
                "str": str,
                "repr": repr,
                "int": int,
                "float": float,
                "index": lambda x: x.__index__(),
                "iter": iter,
            }[what]
            return ["ok", self.tree(fn(obj))]
        if op == "next":
            it, n = self.value(msg[1]), max(1, min(int(msg[2]), _MAX_DRAW))
            items: list = []
            end: object = None
            for _ in range(n):
                try:
                    items.append(self.tree(next(it)))
                except StopIteration:
                    end = "stop"
                    break
                except BaseException as exc:  # noqa: BLE001
                    end = _exc_reply(exc)
                    break
            return ["items", items, end]
        return ["bad", f"unknown request {op!r}"]


def run_judged(cpu_seconds: int, limit: int, timed: dict | None = None) -> None:
    """Serve a judge (never returns). A timed run loads the program only on the judge's first request."""
    code = _compile(_receive(), report=timed is None)
    if code is None:
        os._exit(0)
    server = Server(code, cpu_seconds, limit, timed is not None, bool(timed and timed.get("counted")))
    if timed is not None:
        _timed_start(timed)
    else:
        server.load()
        os.write(STATUS_FD, b"R" if server.failed is None else (b"K" if server.failed[1] == wire.KILLED else b"E"))
    os.close(STATUS_FD)
    server.serve()
    os._exit(0)


_STAND_SLOTS = (
    "__call__", "__getattr__", "__getitem__", "__str__", "__repr__", "__int__", "__float__", "__index__",
    "__bool__", "__len__", "__iter__", "__next__",
)  # fmt: skip


class Echo(Server):
    """The harness of a counted run without its program: the judge replays the run's requests and this
    process serves them with the same code as the run (``Server.handle``), the program's globals and
    objects standing in for themselves with the run's recorded answers (rebuilt before counting starts).
    Its count is the harness's share of the run: the run's count minus this one is the program's work."""

    def __init__(self, conversation: list, limit: int) -> None:
        super().__init__(compile("", "<solution>", "exec", dont_inherit=True), 0, limit, timed=True, counted=True)
        answers: list = []
        self.answer = confine.jail().Answers(answers)  # the next answer, whatever the arguments (C: no frame)
        self.stand = type("Stand", (), {"__slots__": (), **dict.fromkeys(_STAND_SLOTS, self.answer)})()
        self.names: dict = {}
        for pair in conversation:
            if type(pair) is list and len(pair) == 2 and type(pair[0]) is list and type(pair[1]) is list:
                self._prepare(pair[0], pair[1], answers)

    def _value(self, t: object) -> object:
        return _FROM_TREE(t, lambda tag, hid: self.stand)

    def _prepare(self, request: list, reply: list, answers: list) -> None:
        op, kind = request[0] if request else None, reply[0] if reply else None
        try:
            if op == "get":
                if kind == "ok" and len(reply) >= 2 and type(request[1]) is str:
                    value = self._value(reply[1])
                    self.names[request[1]] = self.answer if value is self.stand else value
            elif op == "next":
                if kind == "items" and len(reply) == 3 and type(reply[1]) is list:
                    answers.extend(self._value(t) for t in reply[1])
                    end = reply[2]
                    if end == "stop":
                        answers.append(StopIteration())
                    elif type(end) is list and end and end[0] == "raise":
                        answers.append(Exception(str(end[2]) if len(end) > 2 else ""))
            elif op in ("call", "attr", "item", "unary"):
                if kind == "ok" and len(reply) >= 2:
                    answers.append(self._value(reply[1]))
                elif kind == "raise":
                    answers.append(Exception(str(reply[2]) if len(reply) > 2 else ""))
                else:
                    answers.append(None)
        except wire.Refused:
            answers.append(None)

    def load(self) -> None:
        super().load()
        self.ns.update(self.names)


def _private_from_tree():
    """``wire.from_tree`` as a copy with code objects of its own. The echo decodes the recorded answers
    before its count starts; with the harness's own decoder that would warm up (quicken, specialise) code
    the measured run had to warm up while counted, and the echo's share would come out too small."""
    g = dict(vars(wire))
    for name in ("from_tree", "_int"):
        fn = getattr(wire, name)
        g[name] = types.FunctionType(fn.__code__.replace(), g, name, fn.__defaults__)
    return g["from_tree"]


_FROM_TREE = None


def run_echo(limit: int, timed: dict) -> None:
    """A counted run's calibration (``Echo``): the conversation (requests and answers) comes from the judge
    first, read and parsed without the harness's code (C parser, own loop), for the reason above."""
    global _FROM_TREE
    _receive()
    _FROM_TREE = _private_from_tree()
    data = bytearray()
    try:
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "little"):
            chunk = os.read(DATA_FD, 1 << 20)
            if not chunk:
                os._exit(0)
            data += chunk
        text = bytes(data[4 : 4 + int.from_bytes(data[:4], "little")]).decode("ascii")
        conversation = json.scanner.c_make_scanner(json.decoder.JSONDecoder())(text, 0)[0]
    except (OSError, ValueError, RecursionError, StopIteration, IndexError):
        os._exit(0)
    server = Echo(conversation if type(conversation) is list else [], limit)
    _timed_start(timed)
    os.close(STATUS_FD)
    server.serve()
    os._exit(0)


def run_io(cpu_seconds: int, timed: dict | None = None) -> None:
    """Run the program once as ``__main__`` on its stdin; the exit status says how it ended. A timed run
    starts when the server writes a byte to the channel."""
    code = _compile(_receive(), report=timed is None)
    if code is None:
        os._exit(0)
    if timed is not None:
        _timed_start(timed)
    os.close(STATUS_FD)
    if timed is not None and not os.read(DATA_FD, 1):
        os._exit(0)
    if timed is None:
        confine.cpu_budget(cpu_seconds)
    rc = EXIT_OK
    try:
        exec(code, fresh_module("__main__"))
    except SystemExit as exc:
        if exc.code not in (None, 0):
            rc = EXIT_ERROR
            confine.log_exc("run", exc)
    except BaseException as exc:  # noqa: BLE001
        rc = EXIT_KILLED if wire.classify(exc) == wire.KILLED else EXIT_ERROR
        confine.log_exc("run", exc)
    try:
        sys.stdout.flush()
    except BaseException as exc:  # noqa: BLE001
        if rc == EXIT_OK:
            rc = EXIT_KILLED if wire.classify(exc) == wire.KILLED else EXIT_ERROR
    os._exit(rc)


def run_inproc(cpu_seconds: int) -> None:
    """A test unit the judge cannot run apart from the sample (trust level ``in-process``): program, setup
    and unit run here, and this process reports the unit's verdict itself."""
    code = _compile(_receive())
    if code is None:
        os._exit(0)
    os.close(STATUS_FD)
    msg = wire.loads(wire.recv_msg(DATA_FD, 1 << 30))
    index, setup, unit = int(msg[1]), str(msg[2]), str(msg[3])
    confine.cpu_budget(cpu_seconds)
    verdict = wire.PASS
    try:
        ns = fresh_module("solution")
        exec(code, ns)
        exec(compile(setup, "<setup>", "exec", dont_inherit=True), ns)
        exec(compile(unit, f"<test {index}>", "exec", dont_inherit=True), ns)
    except BaseException as exc:  # noqa: BLE001
        verdict = wire.classify(exc)
        confine.log_exc(f"test {index}", exc)
    wire.send_ctl(DATA_FD, b"V", index, verdict)
    os._exit(0)
