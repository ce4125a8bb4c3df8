"""Wire formats of the sandbox layer: framing, control frames, and the value codec of two-party judging.

Standalone on purpose (standard library only): imported as a top-level module inside the sandbox.

* ``send_obj``/``recv_obj``: 4-byte length + ``marshal`` — only between trusted processes (pool <-> server,
  server <-> zygote, server -> judge). ``marshal`` never decodes bytes a sample wrote.
* ``send_ctl``/``CTL``: fixed 6-byte frames (kind, unit, code) from a judge to the server; fixed size, so a
  hostile judge (model-written tests) can send only well-formed or rejected frames.
* ``send_msg``/``recv_msg`` + ``to_tree``/``from_tree``/``dumps``/``loads``: messages between a judge and a
  sample process. A value crosses as JSON of a *tagged tree*: ``None``, bools, ints below 2**53, floats and
  strings are JSON scalars; every container is a JSON array whose first element is a tag (``l`` list,
  ``t`` tuple, ``s`` set, ``f`` frozenset, ``d`` dict, ``b`` bytes, ``c`` complex, ``i`` big int in hex,
  ``r`` range, ``K``/``V``/``T`` dict views, ``F`` Fraction, ``D`` Decimal, and references: ``h`` an object
  of the sample, ``n`` a global of the sample by name, ``I`` an iterator of the sample, ``g`` a callable of
  the judge). The judge parses with the
  C ``json`` decoder and rebuilds values with :func:`from_tree`, which accepts exactly these forms and
  builds only exact built-in types: nothing a sample wrote ever becomes an object with its own methods.
"""

from __future__ import annotations

import errno
import json
import json.decoder
import json.encoder
import marshal
import struct

# The sample's process runs this module after sample code that may rewrite ``builtins``: the names used
# here (and by ``json``) are bound once, now, so such rewrites only change what the sample computes.
from builtins import (  # noqa: UP029
    Exception,
    bool,
    bytearray,
    bytes,
    complex,
    dict,
    float,
    format,
    frozenset,
    getattr,
    int,
    isinstance,
    len,
    list,
    memoryview,
    range,
    set,
    str,
    tuple,
    type,
    zip,
)
from os import read as _read
from os import write as _write

_BOUND = (
    "isinstance", "id", "float", "int", "str", "repr", "len", "dict", "list", "tuple", "type", "ValueError",
    "TypeError", "iter", "sorted", "hasattr", "bytes", "bytearray", "StopIteration", "range",
)  # fmt: skip


def bind_builtins(*modules: object) -> None:
    """Give ``modules`` their own references to the builtins they use, so that a sample rewriting
    ``builtins`` later does not change how they work in its process."""
    import builtins as b

    for mod in modules:
        for name in _BOUND:
            vars(mod).setdefault(name, getattr(b, name))


bind_builtins(json, json.encoder, json.decoder)

PASS, FAIL, ERROR, TIMEOUT, SYNTAX, KILLED = range(6)  # outcome codes (public contract: ``Outcome``)
_LIMIT_ERRNOS = (errno.EFBIG, errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM)
HDR = struct.Struct("<I")
CTL = struct.Struct("<cIB")  # kind, unit index, outcome code
MAX_DEPTH = 200  # nesting of one value
_SAFE_INT = 1 << 53


class Refused(Exception):
    """A value that cannot cross (not plain data, malformed, too deep or too big)."""


def classify(exc: BaseException) -> int:
    """Outcome code of an exception that ended a test unit (or a program)."""
    if isinstance(exc, AssertionError):
        return FAIL
    if isinstance(exc, MemoryError):
        return KILLED
    if isinstance(exc, OSError) and exc.errno in _LIMIT_ERRNOS:
        return KILLED
    return ERROR


# -- framing ----------------------------------------------------------------------------------------
def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


def read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = _read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return bytes(buf)


def send_msg(fd: int, data: bytes) -> None:
    write_all(fd, HDR.pack(len(data)) + data)


def recv_msg(fd: int, limit: int) -> bytes:
    """One length-prefixed message; ``Refused`` when it announces more than ``limit`` bytes."""
    (n,) = HDR.unpack(read_exact(fd, HDR.size))
    if n > limit:
        raise Refused(f"message of {n} bytes exceeds the {limit}-byte limit")
    return read_exact(fd, n)


class Channel:
    """Length-prefixed messages on a descriptor, buffered both ways: ``queue`` holds a message back until
    ``flush`` (or the next blocking ``recv``), and ``recv`` reads whatever is available, so a request
    and the one queued before it cost one write, and their two answers one read."""

    def __init__(self, fd: int, limit: int, exact: bool = False) -> None:
        """``exact``: read each message with fixed-size reads and send each answer at once, so the work done
        here does not depend on how the peer's writes happened to arrive (counted runs repeat exactly)."""
        self.fd, self.limit, self.exact = fd, limit, exact
        self.buf = bytearray()
        self.out: list[bytes] = []

    def queue(self, data: bytes) -> None:
        self.out.append(HDR.pack(len(data)) + data)

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            write_all(self.fd, data)

    def send(self, data: bytes) -> None:
        self.queue(data)
        self.flush()

    def ready(self) -> bool:
        """A whole message is already buffered."""
        return len(self.buf) >= HDR.size and len(self.buf) >= HDR.size + HDR.unpack_from(self.buf)[0]

    def recv(self) -> bytes:
        """The next message; ``Refused`` when it announces more than ``limit`` bytes, EOFError at the end."""
        if self.exact:
            self.flush()
            return recv_msg(self.fd, self.limit)
        while True:
            if len(self.buf) >= HDR.size:
                (n,) = HDR.unpack_from(self.buf)
                if n > self.limit:
                    raise Refused(f"message of {n} bytes exceeds the {self.limit}-byte limit")
                if len(self.buf) >= HDR.size + n:
                    msg = bytes(self.buf[HDR.size : HDR.size + n])
                    del self.buf[: HDR.size + n]
                    return msg
            self.flush()  # never wait for an answer to something not yet sent
            chunk = _read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buf += chunk


def send_obj(fd: int, obj: object) -> None:
    send_msg(fd, marshal.dumps(obj))


def recv_obj(fd: int, limit: int = 1 << 31) -> object:
    return marshal.loads(recv_msg(fd, limit))


def send_obj_fds(sock, obj: object, fds: list[int]) -> None:
    """``send_obj`` on a unix socket with descriptors attached (SCM_RIGHTS) to its first bytes."""
    import socket

    data = memoryview(HDR.pack(len(payload := marshal.dumps(obj))) + payload)
    sent = socket.send_fds(sock, [data], fds)
    while sent < len(data):
        sent += sock.send(data[sent:])


def recv_obj_fds(sock, maxfds: int = 4) -> tuple[object, list[int]]:
    """A ``send_obj_fds`` frame: (object, descriptors)."""
    import socket

    data, fds, _, _ = socket.recv_fds(sock, HDR.size, maxfds)  # the header only: never the next frame
    if not data:
        raise EOFError
    head = data + read_exact(sock.fileno(), HDR.size - len(data))
    (n,) = HDR.unpack(head)
    return marshal.loads(read_exact(sock.fileno(), n)), list(fds)


def send_ctl(fd: int, kind: bytes, unit: int, code: int) -> None:
    write_all(fd, CTL.pack(kind, unit & 0xFFFFFFFF, code))


# -- value codec ------------------------------------------------------------------------------------
_VIEW_TAGS = {type({}.keys()): "K", type({}.values()): "V", type({}.items()): "T"}


def _value_type(t: type, module: str, name: str) -> bool:
    return getattr(t, "__module__", None) in (module, "_" + module) and getattr(t, "__name__", None) == name


def to_tree(v: object, other, depth: int = 0) -> object:
    """The tagged tree of ``v``. Subclasses of the plain types cross as their plain value (a ``Counter`` as
    a dict, a namedtuple as a tuple, an ``int`` subclass as its int): their methods stay behind. Anything
    else goes to ``other(v)`` (a reference, or ``Refused``)."""
    t = type(v)
    if t is str or t is bool or v is None:
        return v
    if t is int:
        return v if -_SAFE_INT < v < _SAFE_INT else ["i", format(v, "x")]
    if t is float:
        return v
    if depth > MAX_DEPTH:
        raise Refused("value nested too deeply")
    d = depth + 1
    if t is list:
        return ["l", *[to_tree(x, other, d) for x in v]]
    if t is tuple:
        return ["t", *[to_tree(x, other, d) for x in v]]
    if t is dict:
        out: list = ["d"]
        for k, x in v.items():
            out.append(to_tree(k, other, d))
            out.append(to_tree(x, other, d))
        return out
    if t is set or t is frozenset:
        return ["s" if t is set else "f", *[to_tree(x, other, d) for x in v]]
    if t is bytes or t is bytearray:
        return ["b", v.hex()]
    if t is complex:
        return ["c", v.real, v.imag]
    if t is range:
        return ["r", to_tree(v.start, other, d), to_tree(v.stop, other, d), to_tree(v.step, other, d)]
    tag = _VIEW_TAGS.get(t)
    if tag is not None:
        items = list(v) if tag != "T" else [y for pair in v for y in pair]
        return [tag, *[to_tree(x, other, d) for x in items]]
    # by value: subclasses of the plain types, and a few standard value types
    if isinstance(v, int):
        return to_tree(int.__int__(v), other, d)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, (bytes, bytearray)):
        return ["b", bytes.hex(v) if isinstance(v, bytes) else bytearray.hex(v)]
    if isinstance(v, list):
        return ["l", *[to_tree(x, other, d) for x in list.__iter__(v)]]
    if isinstance(v, tuple):
        return ["t", *[to_tree(x, other, d) for x in tuple.__iter__(v)]]
    if isinstance(v, dict):
        out = ["d"]
        for k, x in dict.items(v):
            out.append(to_tree(k, other, d))
            out.append(to_tree(x, other, d))
        return out
    if isinstance(v, (set, frozenset)):
        it = set.__iter__(v) if isinstance(v, set) else frozenset.__iter__(v)
        return ["s" if isinstance(v, set) else "f", *[to_tree(x, other, d) for x in it]]
    if _value_type(t, "fractions", "Fraction"):
        return ["F", to_tree(v.numerator, other, d), to_tree(v.denominator, other, d)]
    if _value_type(t, "decimal", "Decimal"):
        return ["D", str(v)]
    if getattr(t, "__module__", None) == "numpy" and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return to_tree(v.item(), other, d)  # a numpy scalar crosses as the Python number it holds
    return other(v)


def _int(t: object, ref) -> int:
    v = from_tree(t, ref, 1)
    if type(v) is not int:
        raise Refused("expected an int")
    return v


def from_tree(t: object, ref, depth: int = 0) -> object:
    """Rebuild a value from its tagged tree; ``ref(tag, id)`` resolves ``h``/``I``/``g`` references.

    Strict: anything but the documented forms raises ``Refused``; only exact built-in types are built.
    """
    tt = type(t)
    if tt is int or tt is str or tt is float or tt is bool or t is None:
        return t
    if tt is not list or not t or type(t[0]) is not str:
        raise Refused("malformed value")
    if depth > MAX_DEPTH:
        raise Refused("value nested too deeply")
    tag, d = t[0], depth + 1
    try:
        if tag == "l":
            return [from_tree(x, ref, d) for x in t[1:]]
        if tag == "t":
            return tuple([from_tree(x, ref, d) for x in t[1:]])
        if tag == "s":
            return {from_tree(x, ref, d) for x in t[1:]}
        if tag == "f":
            return frozenset([from_tree(x, ref, d) for x in t[1:]])
        if tag == "d":
            if len(t) % 2 != 1:
                raise Refused("malformed dict")
            items = [from_tree(x, ref, d) for x in t[1:]]
            return dict(zip(items[::2], items[1::2], strict=True))
        if tag == "b" and len(t) == 2 and type(t[1]) is str:
            return bytes.fromhex(t[1])
        if tag == "c" and len(t) == 3 and all(type(x) in (int, float) for x in t[1:]):
            return complex(t[1], t[2])
        if tag == "i" and len(t) == 2 and type(t[1]) is str and len(t[1]) < (1 << 24):
            return int(t[1], 16)
        if tag == "r" and len(t) == 4:
            return range(_int(t[1], ref), _int(t[2], ref), _int(t[3], ref))
        if tag == "K":
            return dict.fromkeys([from_tree(x, ref, d) for x in t[1:]]).keys()
        if tag == "V":
            return dict(enumerate([from_tree(x, ref, d) for x in t[1:]])).values()
        if tag == "T" and len(t) % 2 == 1:
            items = [from_tree(x, ref, d) for x in t[1:]]
            return dict(zip(items[::2], items[1::2], strict=True)).items()
        if tag == "F" and len(t) == 3:
            from fractions import Fraction

            return Fraction(_int(t[1], ref), _int(t[2], ref))
        if tag == "D" and len(t) == 2 and type(t[1]) is str and len(t[1]) < 100_000:
            from decimal import Decimal

            return Decimal(t[1])
        if tag in ("h", "I", "g") and len(t) == 2 and type(t[1]) is int:
            return ref(tag, t[1])
        if tag == "n" and len(t) == 2 and type(t[1]) is str:
            return ref(tag, t[1])
    except Refused:
        raise
    except Exception as exc:  # unhashable set/dict members, bad hex, zero denominator, ...
        raise Refused(f"malformed value ({type(exc).__name__})") from None
    raise Refused(f"unknown value form {tag!r}")


def dumps(tree: object) -> bytes:
    # no circular-reference check: trees are built with a depth limit, and the check's id()-keyed table
    # would make the encoder's work depend on object addresses (counted runs must repeat exactly)
    return json.dumps(tree, ensure_ascii=True, separators=(",", ":"), allow_nan=True, check_circular=False).encode(
        "ascii"
    )


def loads(data: bytes) -> list:
    """A message (a JSON array) from bytes; ``Refused`` for anything else (C decoder, no objects kept)."""
    try:
        msg = json.loads(data)
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise Refused(f"malformed message ({type(exc).__name__})") from None
    if type(msg) is not list or not msg or type(msg[0]) is not str:
        raise Refused("malformed message")
    return msg
