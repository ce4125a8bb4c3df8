"""The judge's process: runs the test code and decides each unit's verdict; never runs sample code.

Standalone on purpose: imported as a top-level module inside the sandbox, and run in a freshly forked,
confined child (see ``zygote``) under a uid of its own, non-dumpable, so the sample's process can neither
signal, trace nor read it. Descriptors: 0 /dev/null, 1 stdout, 2 stderr, 3 the channel to the sample's
process, 4 the control channel to the server.

Test code runs here against a namespace whose unknown globals are looked up in the sample's process:
a function of the sample becomes a :class:`Remote` whose calls send the arguments as plain data and
receive the return value as plain data (``wire``); an object that is not plain data stays in the
sample's process and is refused by every comparison (:class:`NotPlainValue`, the test fails); an
iterator becomes a :class:`RemoteIterator`; an exception crosses as its type name; the test's lists, dicts
and sets the sample changes are changed here in place after every answer (:func:`_sync`). Builtins,
the problem's setup (its trusted helpers) and standard modules are the judge's own, so ``==``, ``abs``,
``math.isclose`` and ``sorted`` are never the sample's.
"""

from __future__ import annotations

import builtins
import collections
import contextlib
import hashlib
import importlib
import os
import random
import sys

import confine
import wire

DATA_FD, CTL_FD = 3, 4
_BUILTIN_NAMES = frozenset(vars(builtins))
_IMPORTABLE = frozenset(sys.stdlib_module_names) | {"numpy"}
_MAX_ITEMS = 1_000_000  # items drawn from one iterator of the sample
_CONN: Conn | None = None
_ENTRY_POINT = ""  # the function under test: the sample's, even where a builtin has its name (MBPP's sum)


class NotPlainValue(AssertionError):
    """The test compared, hashed or combined a value of the sample that is not plain data (or that could
    not cross): the test fails, as the issue of a wrong answer."""


class SampleExit(Exception):
    """The sample raised ``SystemExit``/``KeyboardInterrupt``/``GeneratorExit`` inside a call."""


class _SampleGone(BaseException):
    """The sample's process closed its channel (it died or was killed): the server decides the verdict."""


class _Broken(BaseException):
    """The channel cannot be used any more (an oversized or malformed message)."""


class _LoadFailed(BaseException):
    """The program raised when (re)loaded for this unit."""


_EXC_CACHE: dict[tuple[type, str], type] = {}


def _exception(names: object, text: object) -> BaseException:
    """The judge's own exception for a ``raise`` answer: the first built-in class in the sample's MRO names,
    subclassed under the sample's class name (``except ValueError`` and ``type(e).__name__`` both work)."""
    names = [n for n in names if type(n) is str][:16] if type(names) is list else []
    base: type = Exception
    for n in names:
        obj = vars(builtins).get(n)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            base = obj
            break
    if not issubclass(base, Exception):
        base = SampleExit
    name = names[0] if names and names[0].isidentifier() and len(names[0]) <= 64 else base.__name__
    cls = base
    if name != base.__name__:
        cls = _EXC_CACHE.get((base, name))
        if cls is None:
            if len(_EXC_CACHE) >= 256:  # the kept judge outlives samples: bounded
                _EXC_CACHE.clear()
            cls = _EXC_CACHE.setdefault((base, name), type(name, (base,), {"__module__": "sample"}))
    msg = text[:2000] if type(text) is str else ""
    exc = cls.__new__(cls, msg)
    try:
        cls.__init__(exc, msg)
    except Exception:  # noqa: BLE001 - classes with other signatures (UnicodeDecodeError, ...)
        exc.args = (msg,)
    return exc


def _refuse(*_args: object) -> object:
    raise NotPlainValue("a value of the sample that is not plain data was compared or combined")


class Remote:
    """An object that lives in the sample's process. It can be called, asked for an attribute or item, and
    asked about itself (bool, len, str, repr, int, float, index, iter); anything that would hand it a value
    of the judge (``==``, ``<``, ``in``, arithmetic, hashing) is refused."""

    __slots__ = ("_cp_ref_",)

    def __init__(self, ref: list) -> None:
        object.__setattr__(self, "_cp_ref_", ref)

    def _cp_ref(self) -> list:
        return self._cp_ref_

    def __call__(self, *args, **kwargs):
        return _CONN.call(self._cp_ref(), args, kwargs)

    def _cp_object(self) -> list:
        """The reference of an object the sample returned. A global of the sample (a function or class it
        defines) can only be called: reading attributes of it would let the sample stand in for a module
        the test uses (``np.allclose``)."""
        ref = self._cp_ref_
        if ref[0] == "n":
            raise NotPlainValue(f"{ref[1]!r} of the sample can only be called")
        return ref

    def __getattr__(self, name: str):
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return _CONN.result(_CONN.request(["attr", self._cp_object(), name]))

    def __getitem__(self, key):
        return _CONN.result(_CONN.request(["item", self._cp_object(), _CONN.tree(key)]))

    def _cp_unary(self, what: str, typ: type):
        value = _CONN.result(_CONN.request(["unary", self._cp_object(), what]))
        if type(value) is not typ:
            raise NotPlainValue(f"{what}() of a value of the sample gave a {type(value).__name__}")
        return value

    def __bool__(self) -> bool:
        return self._cp_unary("bool", bool)

    def __len__(self) -> int:
        n = self._cp_unary("len", int)
        if n < 0:
            raise NotPlainValue("negative len()")
        return n

    def __str__(self) -> str:
        return self._cp_unary("str", str)

    def __repr__(self) -> str:
        return self._cp_unary("repr", str)

    def __int__(self) -> int:
        return self._cp_unary("int", int)

    def __index__(self) -> int:
        return self._cp_unary("index", int)

    def __float__(self) -> float:
        return self._cp_unary("float", float)

    def __iter__(self):
        return self._cp_unary("iter", RemoteIterator)

    def __setattr__(self, name: str, value: object) -> None:
        raise NotPlainValue("cannot set attributes on a value of the sample")

    __hash__ = _refuse  # type: ignore[assignment]
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __matmul__ = __rmatmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __divmod__ = __rdivmod__ = __pow__ = __rpow__ = __lshift__ = __rlshift__ = __rshift__ = _refuse
    __rrshift__ = __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _refuse
    __neg__ = __pos__ = __abs__ = __invert__ = __round__ = __trunc__ = __floor__ = __ceil__ = _refuse


class RemoteIterator:
    """An iterator of the sample (a generator, ``map``, ``filter``, ``zip``, ...): items are drawn from the
    sample's process in growing chunks, each decoded as plain data; at most ``_MAX_ITEMS`` in all."""

    __slots__ = ("_cp_id", "_cp_buf", "_cp_end", "_cp_chunk", "_cp_drawn")

    def __init__(self, hid: int) -> None:
        self._cp_id, self._cp_buf, self._cp_end = hid, collections.deque(), None
        self._cp_chunk, self._cp_drawn = 1, 0

    def _cp_ref(self) -> list:
        return ["I", self._cp_id]

    def __iter__(self) -> RemoteIterator:
        return self

    def __next__(self):
        if self._cp_buf:
            return self._cp_buf.popleft()
        end = self._cp_end
        if end is not None:
            if end == "stop":
                raise StopIteration
            self._cp_end = "stop"
            raise _exception(end[1] if len(end) > 1 else [], end[2] if len(end) > 2 else "")
        if self._cp_drawn >= _MAX_ITEMS:
            raise NotPlainValue(f"drew more than {_MAX_ITEMS} items from an iterator of the sample")
        reply = _CONN.request(["next", self._cp_ref(), self._cp_chunk])
        if reply[0] != "items" or len(reply) != 3 or type(reply[1]) is not list:
            _CONN.result(reply)
            raise NotPlainValue("malformed answer")
        self._cp_buf.extend(_CONN.value(t) for t in reply[1])
        self._cp_drawn += len(reply[1])
        self._cp_chunk = min(self._cp_chunk * 2, 1024)
        end = reply[2]
        if end == "stop" or (type(end) is list and end and end[0] == "raise"):
            self._cp_end = end
        elif end is not None or not reply[1]:
            self._cp_end = "stop" if reply[1] else ["raise", ["RuntimeError"], "malformed answer"]
        return self.__next__()


_MUTABLE = (list, dict, set)


def _sync(target: object, new: object) -> None:
    """Make ``target`` (a list, dict or set of the test) equal to ``new`` in place, keeping the identity of
    inner lists, dicts and sets where the new state has one of the same kind at the same place (a test's
    alias to ``m[0]`` sees ``m[0].append(5)``). Nothing is done when the kinds differ: a call cannot change
    the type of its caller's object."""
    if isinstance(target, list) and type(new) is list:
        for i in range(min(len(target), len(new))):
            old, value = target[i], new[i]
            if isinstance(old, _MUTABLE) and type(value) is type(old) and old is not target:
                _sync(old, value)
            else:
                target[i] = value
        del target[len(new) :]
        target.extend(new[len(target) :])
    elif isinstance(target, dict) and type(new) is dict:
        for key in [k for k in target if k not in new]:
            del target[key]
        for key, value in new.items():
            old = target.get(key)
            if isinstance(old, _MUTABLE) and type(value) is type(old) and old is not target:
                _sync(old, value)
            else:
                target[key] = value
    elif isinstance(target, set) and type(new) is set:
        target.intersection_update(new)
        target.update(new)


class Conn:
    """The judge's end of the channel to the sample's process."""

    def __init__(self, fd: int, limit: int) -> None:
        self.chan = wire.Channel(fd, limit)
        self.callbacks: dict[int, object] = {}
        self.gone = False
        self.broken: int | None = None
        self.load_failed: int | None = None
        self.pending = 0  # hello/reset requests sent whose answers are not read yet
        self.requests: list[bytes] | None = None  # the conversation, when recorded (counted runs)
        self.watch: dict[int, object] = {}  # mutable arguments passed to the sample (this unit), by id
        self.watch_ids: dict[int, int] = {}  # id() of such an argument -> its id (one id per object)
        self.replies: list[list] = []

    def _queue(self, msg: list) -> None:
        data = wire.dumps(msg)
        if self.requests is not None:
            self.requests.append(data)
        self.chan.queue(data)

    def send_nowait(self, msg: list) -> None:
        """Queue ``msg``; it leaves with the next request, and its answer (``loaded``/``failed``) is read
        before that request's. A (re)load starts a unit: the arguments watched for the last one are let go."""
        self._queue(msg)
        self.pending += 1
        self.watch.clear()
        self.watch_ids.clear()

    def settle(self) -> None:
        """Read the answers still owed (raises as ``request`` does)."""
        while self.pending and not (self.gone or self.broken is not None or self.load_failed is not None):
            self.pending -= 1
            if self._read()[0] != "loaded":
                self.broken = wire.ERROR
                raise _Broken

    # -- values ----------------------------------------------------------------------------------------
    def _ref_out(self, obj: object) -> list:
        if type(obj) is Remote or type(obj) is RemoteIterator:
            return obj._cp_ref()
        if callable(obj):  # a lambda or function of the test: the sample may call it back
            cid = len(self.callbacks) + 1
            self.callbacks[cid] = obj
            return ["g", cid]
        raise TypeError(f"a {type(obj).__name__} cannot be passed to the sample (not plain data)")

    def _ref_in(self, tag: str, hid: int | str) -> object:
        if tag in ("h", "n"):  # an object of the sample, or a global of the sample by name
            return Remote([tag, hid])
        if tag == "I":
            return RemoteIterator(hid)
        if hid not in self.callbacks:
            raise wire.Refused("unknown callable")
        return self.callbacks[hid]

    def tree(self, v: object) -> object:
        return wire.to_tree(v, self._ref_out)

    def value(self, t: object) -> object:
        try:
            return wire.from_tree(t, self._ref_in)
        except wire.Refused as exc:
            raise NotPlainValue(f"the sample's value was refused: {exc}") from None

    # -- requests --------------------------------------------------------------------------------------
    def request(self, msg: list) -> list:
        if self.gone:
            raise _SampleGone
        if self.broken is not None:
            raise _Broken
        if self.load_failed is not None:
            raise _LoadFailed
        self._queue(msg)
        self.settle()
        return self._read()

    def _read(self) -> list:
        """The next answer (serving the sample's callbacks meanwhile)."""
        while True:
            try:
                reply = wire.loads(self.chan.recv())
            except (EOFError, OSError):
                self.gone = True
                raise _SampleGone from None
            except wire.Refused:  # oversized or malformed: the channel cannot be trusted to be in step
                self.broken = wire.FAIL
                raise _Broken from None
            if reply[0] == "chg" and len(reply) == 3 and type(reply[1]) is list and type(reply[2]) is list:
                self._apply(reply[1])
                reply = reply[2]
            if reply[0] == "cb":
                self._callback(reply)
                continue
            if reply[0] == "failed":
                self.load_failed = wire.KILLED if len(reply) > 1 and reply[1] == wire.KILLED else wire.ERROR
                raise _LoadFailed
            if self.requests is not None:
                self.replies.append(reply)
            return reply

    def result(self, reply: list):
        kind = reply[0]
        if kind == "ok" and len(reply) >= 2:
            return self.value(reply[1])
        if kind == "raise":
            raise _exception(reply[1] if len(reply) > 1 else [], reply[2] if len(reply) > 2 else "")
        if kind == "bad":
            raise NotPlainValue(f"the sample's value could not cross: {str(reply[1:])[:200]}")
        raise NotPlainValue("malformed answer from the sample")

    def call(self, ref: list, args: tuple, kwargs: dict):
        watched = [[k, self._watch(a)] for k, a in [*enumerate(args), *kwargs.items()] if isinstance(a, _MUTABLE)]
        tree_args = [self.tree(a) for a in args]
        tree_kwargs = [[k, self.tree(v)] for k, v in kwargs.items()]
        return self.result(self.request(["call", ref, tree_args, tree_kwargs, watched]))

    def _watch(self, obj: object) -> int:
        """The id under which the sample reports changes to ``obj`` (a list, dict or set of the test)."""
        wid = self.watch_ids.get(id(obj))
        if wid is None or self.watch.get(wid) is not obj:
            wid = len(self.watch) + 1
            self.watch[wid], self.watch_ids[id(obj)] = obj, wid
        return wid

    def _apply(self, changes: list) -> None:
        """The sample's changes to arguments it was passed, made to the test's own objects in place."""
        for change in changes:
            if type(change) is not list or len(change) != 2 or type(change[0]) is not int:
                continue
            target = self.watch.get(change[0])
            if target is None:
                continue
            try:
                new = self.value(change[1])
            except NotPlainValue:
                continue
            _sync(target, new)

    def lookup(self, name: str):
        reply = self.request(["get", name])
        kind = reply[0]
        if kind == "missing":
            if name == _ENTRY_POINT:  # not the judge's builtin of the same name
                raise NameError(f"name {name!r} is not defined by the sample")
            raise KeyError(name)
        if kind == "module":  # an alias (``np``) of a module the sample imported: the judge's own copy
            reported = reply[1] if len(reply) > 1 else None
            if type(reported) is str and reported in _IMPORTABLE:
                try:
                    return importlib.import_module(reported)
                except ImportError:
                    pass
            raise KeyError(name)
        return self.result(reply)

    def _callback(self, msg: list) -> None:
        try:
            fn = self.callbacks[msg[1]]
            args = [self.value(a) for a in msg[2]]
            kwargs = {str(k): self.value(v) for k, v in msg[3]}
        except Exception:  # noqa: BLE001
            reply: list = ["raise", ["TypeError"], "malformed callback request"]
        else:
            try:
                reply = ["ok", self.tree(fn(*args, **kwargs))]
            except (_SampleGone, _Broken, _LoadFailed):
                raise
            except BaseException as exc:  # noqa: BLE001 - the test's exception goes to the sample
                reply = ["raise", [c.__name__ for c in type(exc).__mro__][:16], str(exc)[:2000]]
        try:
            self.chan.send(wire.dumps(reply))
        except OSError:
            self.gone = True
            raise _SampleGone from None


class _Globals(dict):
    """A unit's namespace: names it does not define (and builtins do not) are looked up in the sample.

    The setup runs once per sample in a base namespace; each unit runs in a copy of it. A sample's
    function or class is looked up by name (valid across the per-unit reloads), so it is remembered in
    the base too; plain values are fetched again in every unit."""

    __slots__ = ("base",)

    def __missing__(self, name: str):
        if name != _ENTRY_POINT:
            if name in _BUILTIN_NAMES:  # the judge's own builtins
                raise KeyError(name)
            if name in _IMPORTABLE:  # a standard module the test uses is the judge's own, never the sample's
                try:
                    value = importlib.import_module(name)
                except ImportError:
                    raise KeyError(name) from None
                dict.__setitem__(self, name, value)
                return value
        value = _CONN.lookup(name)
        dict.__setitem__(self, name, value)
        base = getattr(self, "base", None)
        if base is not None and (
            type(value) is Remote and value._cp_ref()[0] == "n" or type(value).__name__ == "module"
        ):
            dict.__setitem__(base, name, value)
        return value


_CODE_CACHE: dict[tuple[str, str], object] = {}  # the kept judge sees the same tests for consecutive samples


def _compiled(source: str, name: str):
    key = (source, name)
    code = _CODE_CACHE.get(key)
    if code is None:
        if len(_CODE_CACHE) > 512:
            _CODE_CACHE.clear()
        code = _CODE_CACHE[key] = compile(source, name, "exec", dont_inherit=True, optimize=0)
    return code


def _run(conn: Conn, index: int, source: str | None, setup, state: dict) -> tuple[bytes, int]:
    """One unit: a fresh program in the sample's process (hello for the first unit, reset after), the
    setup's namespace (run once per sample), the unit's code."""
    conn.load_failed = None
    verdict = wire.ERROR
    try:
        if not state.get("started"):
            conn.send_nowait(["hello"])
        elif not state.get("one_load"):  # each unit on a freshly loaded program (a timed run loads once)
            conn.send_nowait(["reset"])
        state["started"] = True
        if setup is None or source is None:
            raise RuntimeError("no such test unit, or its setup does not compile")
        unit = _compiled(source, f"<test {index}>")
        base = state.get("base")
        if base is None:
            base = _Globals(__builtins__=builtins, __name__="solution")
            exec(setup, base)
            state["base"] = base
        ns = _Globals(base)
        ns.base = base
        exec(unit, ns)
        conn.settle()
        verdict = wire.PASS
    except (_SampleGone, _Broken, _LoadFailed):
        pass
    except BaseException as exc:  # noqa: BLE001 - a test that raises is a failed (or erroneous) test
        verdict = wire.classify(exc)
        confine.log_exc(f"test {index}", exc)
    with contextlib.suppress(_SampleGone, _Broken, _LoadFailed):
        conn.settle()  # a unit that asked nothing still needs the program to have loaded
    # a test that swallowed the judge's own signals still cannot pass
    if conn.gone:
        return b"G", 0
    if conn.broken is not None:
        return b"B", conn.broken
    if conn.load_failed is not None:
        return b"V", conn.load_failed
    return b"V", verdict


def _serve_plan(ctl, plan: dict, channel: int, limit: int) -> bool:
    """Judge one sample (its channel and tests): one verdict frame per ``go``; False when this process
    should go (the server ended, or this sample's channel broke)."""
    global _CONN, _ENTRY_POINT, _RECORDED
    conn = _CONN = Conn(channel, limit)
    _RECORDED = None
    if plan.get("record"):
        conn.requests = []
    _ENTRY_POINT = str(plan.get("entry_point") or "")
    with contextlib.suppress(OSError):  # the sample's directory: a test may read the files it wrote
        os.chdir(plan.get("cwd") or os.environ.get("HOME", "/"))
    try:
        setup = _compiled(plan.get("setup") or "", "<setup>")
    except BaseException as exc:  # noqa: BLE001
        setup = None
        confine.log_exc("setup", exc)
    units = dict(plan["units"])
    state: dict = {"one_load": bool(plan.get("one_load"))}
    try:
        while True:
            try:
                kind, index, _ = wire.CTL.unpack(wire.read_exact(ctl.fileno(), wire.CTL.size))
            except (EOFError, OSError):
                return False
            if kind == b"H":  # the recorded conversation's digest: the server reuses echo counts by it
                wire.write_all(ctl.fileno(), wire.CTL.pack(b"H", index, 0) + _digest(conn))
                continue
            if kind != b"U":  # done with this sample
                return True
            random.seed(index)  # tests that draw from the global generator see the same inputs every run
            kind, code = _run(conn, index, units.get(index), setup, state)
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
            wire.send_ctl(ctl.fileno(), kind, index, code)
            if kind != b"V":  # the channel is gone or broken: the server starts another sample
                return True
    finally:
        with contextlib.suppress(OSError):
            conn.chan.flush()
        os.close(channel)
        if conn.requests is not None:
            _RECORDED = (conn.requests, conn.replies)


_RECORDED: tuple[list[bytes], list[list]] | None = None  # the last recorded conversation


def _digest(conn: Conn) -> bytes:
    """SHA-256 of the conversation recorded so far (each request and answer, length-prefixed)."""
    h = hashlib.sha256()
    for data in [*(conn.requests or []), b"--", *(wire.dumps(r) for r in conn.replies)]:
        h.update(wire.HDR.pack(len(data)) + data)
    return h.digest()


def _replay_plan(ctl, channel: int, limit: int) -> bool:
    """The calibration of a counted run (``sample.Echo``): the recorded answers first, then, on ``go``,
    every recorded request again, in order, each answer read; one verdict frame. False when this process
    should go."""
    requests, replies = _RECORDED or ([], [])
    chan = wire.Channel(channel, limit)
    try:
        try:
            chan.send(wire.dumps([[wire.loads(q), a] for q, a in zip(requests, replies, strict=False)]))
        except (OSError, wire.Refused):
            return True
        while True:
            try:
                kind, index, _ = wire.CTL.unpack(wire.read_exact(ctl.fileno(), wire.CTL.size))
            except (EOFError, OSError):
                return False
            if kind != b"U":
                return True
            try:
                for data in requests:
                    chan.send(data)
                    chan.recv()
            except (EOFError, OSError, wire.Refused):
                wire.send_ctl(ctl.fileno(), b"G", index, wire.ERROR)
                return True
            wire.send_ctl(ctl.fileno(), b"V", index, wire.PASS)
    finally:
        os.close(channel)


def main(limit: int) -> None:
    """Judge samples one after the other (never returns). The server sends each sample's plan (setup and
    test units, with the sample's channel attached), then ``go`` frames; this process outlives samples
    (it never runs their code) and is replaced whenever it misses a deadline."""
    import socket

    ctl = socket.socket(fileno=CTL_FD)
    while True:
        try:
            plan, fds = wire.recv_obj_fds(ctl, 1)
        except (EOFError, OSError):
            os._exit(0)
        if not fds:
            os._exit(0)
        if not (_replay_plan(ctl, fds[0], limit) if plan.get("replay") else _serve_plan(ctl, plan, fds[0], limit)):
            os._exit(0)
