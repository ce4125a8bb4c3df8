"""Two-party judging: what crosses between the judge and the sample, and a hostile corpus against it.

The attacks are generic, as a hostile policy's would be: they do not know codepref's internal names. They
search frames, ``gc``, ``sys.modules``, their own memory (``/proc/self/mem``, freed pages included),
other processes and every open descriptor for anything that looks like a test, an expected value, a
verdict channel or a harness, and use whatever they find. Each asserts exact outcome codes.
"""

from __future__ import annotations

import os
import secrets
import time

import pytest

from codepref.execution import ExecutionConfig, Outcome, WorkerPool
from codepref.execution.trust import IN_PROCESS, JUDGED, trust_level, trust_levels

from .conftest import has_layer

P, F, E, T, S, K = (int(o) for o in Outcome)


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(ExecutionConfig(timeout=2.0, memory_mb=512, slots=2)) as p:
        yield p


@pytest.fixture(scope="module")
def inproc_pool():
    """A pool that runs in-process units in the sample's process (``in_process_tests=True``: opt-in)."""
    with WorkerPool(ExecutionConfig(timeout=2.0, memory_mb=512, slots=1, in_process_tests=True)) as p:
        yield p


# -- what crosses -----------------------------------------------------------------------------------------
def test_plain_values_cross_exactly(pool):
    prog = (
        "import math\n"
        "def f(k):\n"
        "    return [None, True, 3, -2**80, 1.5, float('nan'), float('inf'), -0.0, 2+3j, 'é\\ud800', b'\\x00\\xff',\n"
        "            (1, (2,)), [1, [2]], {'a': [1]}, {1, 2}, frozenset({3}), {(1, 2): None}][k]\n"
    )
    tests = [
        "assert f(0) is None",
        "assert f(1) is True",
        "assert f(2) == 3 and type(f(2)) is int",
        "assert f(3) == -2**80",
        "assert f(4) == 1.5 and type(f(4)) is float",
        "import math\nassert math.isnan(f(5))",
        "assert f(6) == float('inf')",
        "import math\nassert math.copysign(1, f(7)) == -1",
        "assert f(8) == 2+3j",
        "assert f(9) == 'é\\ud800'",
        "assert f(10) == b'\\x00\\xff'",
        "assert f(11) == (1, (2,)) and type(f(11)[1]) is tuple",
        "assert f(12) == [1, [2]]",
        "assert f(13) == {'a': [1]}",
        "assert f(14) == {1, 2} and type(f(14)) is set",
        "assert f(15) == frozenset({3}) and type(f(15)) is frozenset",
        "assert f(16) == {(1, 2): None}",
    ]
    assert pool.run_asserts(prog, tests).codes == [P] * len(tests)


def test_iterators_ranges_views_and_standard_values(pool):
    prog = (
        "from fractions import Fraction\nfrom decimal import Decimal\nfrom collections import Counter, OrderedDict, namedtuple\n"
        "Pt = namedtuple('Pt', 'x y')\n"
        "def gen(n):\n    yield from range(n)\n"
        "def fib():\n    a, b = 0, 1\n    while True:\n        yield a\n        a, b = b, a + b\n"
        "def boom():\n    yield 1\n    raise ValueError('late')\n"
        "def m(xs):\n    return map(lambda x: x * 2, xs)\n"
        "def r():\n    return range(2, 10, 3)\n"
        "def keys():\n    return {'a': 1, 'b': 2}.keys()\n"
        "def values():\n    return {'a': 1}.values()\n"
        "def std(k):\n    return [Fraction(1, 3), Decimal('1.10'), Counter('aab'), OrderedDict(a=1), Pt(1, 2)][k]\n"
    )
    tests = [
        "assert list(gen(3)) == [0, 1, 2]",
        "assert gen(3) != [0, 1, 2]",  # a generator is not a list, as in-process
        "import itertools\nassert list(itertools.islice(fib(), 10)) == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]",
        "g = fib()\nassert next(g) == 0 and next(g) == 1 and next(g) == 1",
        "it = boom()\nassert next(it) == 1\ntry:\n    next(it)\n    assert False\nexcept ValueError as e:\n    assert 'late' in str(e)",
        "assert list(m([1, 2])) == [2, 4]",
        "assert r() == range(2, 10, 3) and list(r()) == [2, 5, 8]",
        "assert keys() == {'a', 'b'}",
        "assert list(values()) == [1]",
        "from fractions import Fraction\nassert std(0) == Fraction(1, 3) and std(0) != 1 / 3",
        "from decimal import Decimal\nassert std(1) == Decimal('1.10')",
        "assert std(2) == {'a': 2, 'b': 1}",
        "assert std(3) == {'a': 1}",
        "assert std(4) == (1, 2)",
    ]
    assert pool.run_asserts(prog, tests).codes == [P] * len(tests)


def test_exceptions_mutation_callbacks_objects_and_globals(pool):
    prog = (
        "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
        "    def total(self):\n        return self.a + self.b\n"
        "    def __len__(self):\n        return 2\n    def __str__(self):\n        return f'Pair({self.a}, {self.b})'\n"
        "def longest(pairs):\n    return max(p.b - p.a for p in pairs)\n"
        "class MyError(KeyError):\n    pass\n"
        "def fail(k):\n    raise [ValueError('bad'), MyError('k'), ZeroDivisionError()][k]\n"
        "def sort_in_place(xs, d):\n    xs.sort()\n    d['seen'] = True\n"
        "def apply(fn, xs):\n    return [fn(x) for x in xs]\n"
        "def adder(n):\n    return lambda x: x + n\n"
        "LIMIT = 10\nTABLE = {'a': [1, 2]}\n"
    )
    tests = [
        "try:\n    fail(0)\n    assert False\nexcept ValueError as e:\n    assert str(e) == 'bad'",
        "try:\n    fail(1)\n    assert False\nexcept KeyError as e:\n    assert type(e).__name__ == 'MyError'",
        "try:\n    fail(2)\nexcept ZeroDivisionError:\n    pass\nelse:\n    assert False",
        "xs, d = [3, 1, 2], {}\nsort_in_place(xs, d)\nassert xs == [1, 2, 3] and d == {'seen': True}",
        "assert apply(lambda x: x * 10, [1, 2]) == [10, 20]",
        "assert apply(str.upper, ['a']) == ['A']",
        "assert adder(2)(3) == 5",
        "assert longest([Pair(1, 5), Pair(2, 3)]) == 4",
        "p = Pair(1, 2)\nassert p.a == 1 and p.total() == 3 and len(p) == 2 and str(p) == 'Pair(1, 2)'",
        "assert LIMIT == 10 and TABLE['a'] == [1, 2]",
        "assert Pair(1, 2) == Pair(1, 2)",  # objects of the sample never meet the judge's ==
    ]
    assert pool.run_asserts(prog, tests).codes == [P] * 10 + [F]


def test_arguments_change_as_they_would_in_one_process(pool):
    """The test's own lists, dicts and sets change when the sample changes them: in the call, before it raises,
    later through a reference it kept, while the test iterates a generator, and inside (a test's alias to an
    inner list sees the change). Each program is checked against running test and program in one process."""
    prog = (
        "def evens(xs):\n    xs.clear()\n    yield 2\n    yield 4\n"
        "def boom(xs):\n    xs.clear()\n    raise ValueError('no')\n"
        "class Acc:\n    def __init__(self, xs):\n        self.xs = xs\n"
        "    def go(self):\n        self.xs.append(99)\n        return 1\n"
        "def make(xs):\n    return Acc(xs)\n"
        "def grow(m):\n    m[0].append(5)\n    m.append([7])\n"
        "def tag(d, s):\n    d['k'].add(3)\n    s.discard(1)\n"
        "def pure(xs):\n    return sorted(xs)\n"
    )
    tests = [
        "xs = [4, 3, 2, 1]\nassert list(evens(xs)) == [2, 4]\nassert xs == [4, 3, 2, 1]",
        "xs = [1, 2, 3]\ntry:\n    boom(xs)\nexcept ValueError:\n    pass\nassert xs == [1, 2, 3]",
        "xs = []\na = make(xs)\nassert a.go() == 1\nassert xs == []",
        "m = [[1]]\nrow = m[0]\ngrow(m)\nassert row == [1]",
        "m = [[1]]\nrow = m[0]\ngrow(m)\nassert row == [1, 5] and m == [[1, 5], [7]] and m[0] is row",
        "d, s = {'k': {1}}, {1, 2}\ninner = d['k']\ntag(d, s)\nassert inner == {1, 3} and s == {2}",
        "xs = [3, 1]\nfor _ in range(50):\n    assert pure(xs) == [1, 3]\nassert xs == [3, 1]",
    ]
    expected = []
    for test in tests:  # the same test and program in one process: the reference semantics
        ns: dict = {}
        exec(prog, ns)
        try:
            exec(test, ns)
            expected.append(P)
        except AssertionError:
            expected.append(F)
    assert expected == [F, F, F, F, P, P, P]
    assert pool.run_asserts(prog, tests).codes == expected


def test_builtin_named_entry_point_and_standard_modules(pool):
    prog = "import sys\ndef sum(a, b):\n    return a * b\ndef size(x):\n    return sys.getsizeof(x)\n"
    tests = ["assert sum(2, 5) == 10", "assert size((1, 2)) == sys.getsizeof((1, 2))"]
    job = pool.assert_job(prog, tests, "", entry_point="sum")
    assert pool.map_jobs([job])[0].codes == [P, P]
    # without the entry point, a builtin name is the judge's own builtin
    assert pool.run_asserts(prog, tests[:1]).codes == [E]


def test_tests_can_read_files_the_sample_wrote(pool):
    prog = "def save(text):\n    with open('out.txt', 'w') as fh:\n        fh.write(text)\n"
    assert pool.run_asserts(prog, ["save('hi')\nassert open('out.txt').read() == 'hi'"]).codes == [P]


def test_trust_levels_are_static_and_in_process_units_run_with_the_program_only_when_asked(pool, inproc_pool):
    assert trust_level("assert f(1) == 2") == JUDGED
    assert trust_level("assert isinstance(f(), Pair)") == IN_PROCESS
    assert trust_level("try:\n    f()\nexcept MyErr:\n    pass") == IN_PROCESS
    assert trust_level("assert isinstance(f(), int)") == JUDGED  # int is the judge's own
    ref = "class Point:\n    pass\ndef f():\n    return Point()\n"
    assert trust_levels(["assert f() == Point(1)", "assert F(1) == 2"], "", reference=ref) == [IN_PROCESS, JUDGED]
    prog = "from dataclasses import dataclass\n@dataclass\nclass D:\n    x: int\ndef f():\n    return D(1)\n"
    tests = ["assert f() == D(1)", "assert isinstance(f(), D)", "assert f().x == 1", "assert f() == D(2)"]
    trust = trust_levels(tests, "", reference=prog)
    assert trust == [IN_PROCESS, IN_PROCESS, JUDGED, IN_PROCESS]
    assert inproc_pool.map_jobs([pool.assert_job(prog, tests, "", trust=trust)])[0].codes == [P, P, P, F]
    # by default a unit that needs the sample's own types is not run: no verdict the sample could have written
    result = pool.map_jobs([pool.assert_job(prog, tests, "", trust=trust)])[0]
    assert result.codes == [E, E, P, E] and "in-process" in result.stderr_tail
    # model-written tests are never moved into the sample's process
    assert pool.run_asserts(prog, tests, untrusted=True).codes == [F, E, P, F]


# A wrong program that, wherever it runs, tries to report success itself: every small integer it finds in the
# frames above it is taken for a unit index and sent, in a few plausible frame formats, down every descriptor.
SELF_REPORTER = """
import os, struct, sys

class Pt:
    def __init__(self, v):
        self.v = v

def make(x):
    return Pt(0)

def _report():
    found = {0, 1, 2}
    f = sys._getframe()
    while f is not None:
        found.update(v for v in f.f_locals.values() if type(v) is int and 0 <= v < 64)
        f = f.f_back
    for fd in range(3, 64):
        for i in sorted(found):
            for frame in (struct.pack("<cIB", b"V", i, 0), struct.pack("<cI", b"P", i), b"V" + bytes([i, 0])):
                try:
                    os.write(fd, frame)
                except OSError:
                    pass
    os._exit(0)

_report()
"""


def test_a_verdict_is_never_the_samples_own_report(pool, inproc_pool):
    """Tests that need the sample's own class: by default not run (an error for every sample), so a wrong
    program that reports its own success gets no PASS; run in its process (opt-in), the honest one passes."""
    tests = ["p = make(2)\nassert isinstance(p, Pt) and p.v == 4", "assert make(5).v == 25"]
    honest = "class Pt:\n    def __init__(self, v):\n        self.v = v\ndef make(x):\n    return Pt(x * x)\n"
    assert trust_levels(tests, "") == [IN_PROCESS, JUDGED]
    codes = pool.run_asserts(SELF_REPORTER, tests).codes
    assert codes[0] == E and codes[1] != P, codes
    assert pool.run_asserts(honest, tests).codes == [E, P]
    assert inproc_pool.run_asserts(honest, tests).codes == [P, P]


def test_generated_tests_each_in_their_own_processes(pool):
    prog = "calls = []\ndef f(x):\n    calls.append(x)\n    return len(calls)\n"
    assert pool.run_asserts(prog, ["assert f(0) == 1"] * 3, untrusted=True).codes == [P, P, P]
    assert pool.run_asserts("def f(:\n", ["pass", "pass"], untrusted=True).codes == [S, S]
    assert pool.run_asserts("raise SystemExit(0)\n", ["pass", "pass"], untrusted=True).codes == [E, E]


# -- hostile corpus -----------------------------------------------------------------------------------------
# A generic searcher the attacks share: walks frames, gc, modules, its own memory and other processes,
# looking for strings that match a pattern (the shape of an expected value, not the value itself).
SEARCHER = r"""
import gc, os, re, sys

def _strings(obj, out, depth=0):
    if depth > 3:
        return
    if isinstance(obj, (str, bytes)):
        out.append(obj if isinstance(obj, str) else obj.decode('latin-1'))
    elif isinstance(obj, dict):
        for k, v in list(obj.items())[:2000]:
            _strings(k, out, depth + 1); _strings(v, out, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in list(obj)[:2000]:
            _strings(v, out, depth + 1)
    elif hasattr(obj, '__dict__') and not isinstance(obj, type):
        try:
            _strings(vars(obj), out, depth + 1)
        except Exception:
            pass
    elif hasattr(obj, 'co_consts'):
        _strings(obj.co_consts, out, depth + 1)

def _memory(pid):
    found = []
    try:
        maps = open(f'/proc/{pid}/maps').read().splitlines()
        mem = open(f'/proc/{pid}/mem', 'rb', 0)
    except OSError:
        return found
    for line in maps:
        addr, perms = line.split()[:2]
        if 'r' not in perms:
            continue
        lo, hi = (int(x, 16) for x in addr.split('-'))
        if hi - lo > 1 << 28:
            continue
        try:
            mem.seek(lo)
            found.append(mem.read(hi - lo).decode('latin-1'))
        except (OSError, ValueError, OverflowError):
            pass
    return found

def search(pattern):
    rx = re.compile(pattern)
    texts = []
    f = sys._getframe()
    while f is not None:
        _strings(f.f_locals, texts); _strings(f.f_globals, texts); _strings(f.f_code, texts)
        f = f.f_back
    for obj in gc.get_objects():
        _strings(obj, texts)
    for mod in list(sys.modules.values()):
        _strings(getattr(mod, '__dict__', {}), texts)
    texts += _memory('self')
    for pid in os.listdir('/proc'):
        if pid.isdigit() and int(pid) != os.getpid():
            texts += _memory(pid)
            for name in ('environ', 'cmdline'):
                try:
                    texts.append(open(f'/proc/{pid}/{name}', 'rb').read().decode('latin-1'))
                except OSError:
                    pass
    for fd in range(64):
        try:
            texts.append(os.readlink(f'/proc/self/fd/{fd}'))
        except OSError:
            pass
    for t in texts:
        m = rx.search(t)
        if m:
            return m.group(0)
    return None
"""


def _token() -> str:
    return "cpsecret" + secrets.token_hex(8)


def test_expected_values_are_nowhere_the_sample_can_look(pool, inproc_pool):
    token = _token()
    prog = SEARCHER + "def answer():\n    return search(r'cpsecret[0-9a-f]{16}') or 'nothing found'\n"
    # warm the slot with other jobs that hold the same kind of secret first (freed memory is searched too)
    for _ in range(3):
        pool.run_asserts("def answer():\n    return 0\n", [f"assert answer() == {_token()!r}"])
    tests = [f"assert answer() == {token!r}", f"x = {token!r}\nassert answer() == x"]
    r = pool.run_asserts(prog, tests, f"EXPECTED = {token!r}\n")
    assert r.codes == [F, F], r.stderr_tail
    # the same search does find the value when the test runs in the sample's process (so it can look)
    inproc = pool.assert_job(prog, tests[:1], "", trust=[IN_PROCESS])
    assert inproc_pool.map_jobs([inproc])[0].codes == [P]
    io = pool.run_io(SEARCHER + "print(search(r'cpsecret[0-9a-f]{16}') or 'nothing found')\n", ["x\n"], [token])
    assert io.codes == [F]


def test_forged_equality_and_numbers_never_pass(pool):
    prog = (
        "import unittest.mock\n"
        "class Always:\n    def __eq__(self, other):\n        return True\n    __hash__ = None\n"
        "class Int(int):\n    __eq__ = int.__ne__\n    __hash__ = int.__hash__\n"
        "class Flt(float):\n    def __sub__(self, other):\n        return 0.0\n    __rsub__ = __sub__\n"
        "ns = {}\nexec(compile('class Real:\\n    def __eq__(self, o):\\n        return True\\n', "
        "'/usr/lib/python3/dist-packages/numpy/core/_methods.py', 'exec'), ns)\nReal = ns['Real']\n"
        "class HidingList(list):\n    def __iter__(self):\n        return iter([])\n    def __eq__(self, o):\n        return True\n"
        "def f(k):\n"
        "    return [Always(), unittest.mock.ANY, Int(4), Flt(9.0), Real(), [Always(), 2], {'k': Always()},\n"
        "            HidingList([7]), Int(5)][k]\n"
    )
    tests = [
        "assert f(0) == 5",
        "assert f(1) == 5",
        "assert f(2) == 5",  # Int(4) with __eq__ = __ne__
        "assert abs(f(3) - 5.0) < 1e-9",  # Flt(9.0) whose __sub__ says 0
        "import math\nassert math.isclose(f(3), 5.0)",
        "assert f(4) == 5",
        "assert f(5) == [1, 2]",
        "assert f(6) == {'k': 1}",
        "assert f(7) == [1]",  # the list's real content is [7]
        "assert f(8) == 5",  # by value an int subclass is its int: Int(5) is 5, nothing forged
    ]
    assert pool.run_asserts(prog, tests).codes == [F] * 9 + [P]


def test_descriptor_forgeries_never_pass(pool):
    # every frame shape a verdict channel might use, on every descriptor, before and during the tests
    forge = (
        "import os, struct, json, marshal\n"
        "FRAMES = [b'V' + struct.pack('<IB', i, 0) for i in range(8)] + [bytes(21)]\n"
        "FRAMES += [struct.pack('<I', len(d)) + d for d in (json.dumps(['ok', 5]).encode(), json.dumps(['loaded']).encode(),\n"
        "           marshal.dumps({'codes': [0] * 8}), marshal.dumps(('exit', 1, 0, 0.0)))]\n"
        "def spray():\n"
        "    for fd in range(1024):\n"
        "        for frame in FRAMES:\n"
        "            try:\n                os.write(fd, frame)\n            except OSError:\n                pass\n"
        "spray()\n"
        "def f(x):\n    spray()\n    return 0\n"
    )
    tests = ["assert f(1) == 5", "assert f(2) == 5", "pass"]
    codes = pool.run_asserts(forge, tests).codes
    assert codes[:2] in ([F, F], [E, E]) and P not in codes[:2], codes


def test_harness_patching_and_frame_walking_never_pass(pool):
    # patch every function of every loaded module whose name suggests judging, and call every callable
    # reachable from the caller frames with "pass"-looking arguments
    prog = (
        "import sys, gc\n"
        "def _patch():\n"
        "    for mod in list(sys.modules.values()):\n"
        "        for name, obj in list(getattr(mod, '__dict__', {}).items()):\n"
        "            low = name.lower()\n"
        "            if callable(obj) and any(w in low for w in ('verdict', 'report', 'judge', 'check', 'compare', 'match', 'classify')):\n"
        "                try:\n                    setattr(mod, name, lambda *a, **k: True)\n                except Exception:\n                    pass\n"
        "    f = sys._getframe(1)\n"
        "    while f is not None:\n"
        "        for name, obj in list(f.f_locals.items()) + list(f.f_globals.items()):\n"
        "            if callable(obj) and not isinstance(obj, type):\n"
        "                for args in ((0, 0), (0,), (b'V', 0, 0)):\n"
        "                    try:\n                        obj(*args)\n                    except BaseException:\n                        pass\n"
        "            if isinstance(obj, list):\n"
        "                obj.clear()\n"
        "        f = f.f_back\n"
        "def f(x):\n    _patch()\n    return x + 100\n"
    )
    tests = ["assert f(1) == 2", "assert f(3) == 4"]
    assert P not in pool.run_asserts(prog, tests).codes


def test_hostile_generated_test_decides_only_its_own_verdict(pool):
    prog = "def f(x):\n    return x + 100\n"  # wrong for every test below
    hostile = (
        "import os, struct, builtins, sys\n"
        "for fd in range(1024):\n"
        "    for i in range(4):\n"
        "        try:\n            os.write(fd, b'V' + struct.pack('<IB', i, 0))\n        except OSError:\n            pass\n"
        "builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "try:\n    f.__globals__\nexcept BaseException:\n    pass\n"
    )
    tests = [hostile, "assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4"]
    codes = pool.run_asserts(prog, tests, untrusted=True).codes
    assert codes[1:] == [F, F, F]
    # a generated test that tries to poison the sample's state for the next one (and one that hangs)
    stateful = "import sys\ndef f(x):\n    return getattr(sys, 'poison', x + 1)\n"
    poison = "import sys\nsys.poison = 99\nf(0)"
    assert pool.run_asserts(stateful, ["f.poison = 1", poison, "assert f(1) == 2"], untrusted=True).codes[2] == P
    t0 = time.monotonic()
    assert pool.run_asserts(prog, ["while True: pass", "assert f(0) == 100"], untrusted=True).codes == [T, P]
    assert time.monotonic() - t0 < 8


def test_nothing_crosses_samples_of_a_slot(pool):
    # SysV IPC, POSIX message queues, /dev/shm, /tmp and the working directory: nothing one sample leaves
    # reaches the next one (one slot, so the samples run one after the other in the same server)
    with WorkerPool(ExecutionConfig(timeout=2.0, slots=1)) as one:
        leave = (
            "import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "def shm():\n    return libc.shmget(0x5eed, 1 << 20, 0o1666)\n"
            "def msg():\n    return libc.msgget(0x5eed, 0o1666)\n"
            "def files():\n    n = 0\n    for path in ('/dev/shm/x', '/tmp/x', '/var/tmp/x', 'here.txt'):\n"
            "        try:\n            open(path, 'w').write('left')\n            n += 1\n        except OSError:\n            pass\n    return n\n"
        )
        codes = one.run_asserts(leave, ["assert shm() == -1", "assert msg() == -1", "assert files() == 1"]).codes
        if has_layer(one, "seccomp"):
            assert codes == [P, P, P]  # refused: only its own working directory is writable
        look = (
            "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "def seen():\n    hits = [p for p in ('/dev/shm/x', '/tmp/x', '/var/tmp/x', 'here.txt') if os.path.exists(p)]\n"
            "    return hits + os.listdir('.') + ([] if libc.shmget(0x5eed, 0, 0) == -1 else ['shm'])\n"
        )
        assert one.run_asserts(look, ["assert seen() == []"]).codes == [P]


def test_deadline_belongs_to_the_server(pool):
    # sleeping while writing fake frames everywhere does not extend anything
    prog = (
        "import os, struct, time\n"
        "def f():\n"
        "    while True:\n"
        "        for fd in range(64):\n"
        "            for i in range(4):\n"
        "                try:\n                    os.write(fd, b'V' + struct.pack('<IB', i, 0))\n                except OSError:\n                    pass\n"
        "        time.sleep(0.01)\n"
    )
    with WorkerPool(ExecutionConfig(timeout=1.0, slots=1)) as one:
        t0 = time.monotonic()
        codes = one.run_asserts(prog, ["f()", "f()", "assert 1 == 1"]).codes
        assert codes[2] == P and all(c in (T, F) for c in codes[:2])  # F: its garbage ended its own call
        quiet = "import time\ndef f():\n    time.sleep(60)\n"
        assert one.run_asserts(quiet, ["f()", "f()"]).codes == [T, T]
        assert time.monotonic() - t0 < 8


def test_sample_cannot_reach_the_judge_process(pool):
    # signal, trace or read every other process it can see
    prog = (
        "import os, signal, ctypes\n"
        "def attack():\n"
        "    n = 0\n"
        "    for pid in [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]:\n"
        "        for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "            try:\n                os.kill(pid, sig)\n                n += 1\n            except OSError:\n                pass\n"
        "        for name in ('mem', 'environ', 'fd'):\n"
        "            try:\n                os.listdir(f'/proc/{pid}/fd') if name == 'fd' else open(f'/proc/{pid}/{name}', 'rb').read(1)\n"
        "                n += 1\n            except OSError:\n                pass\n"
        "    return n\n"
    )
    assert pool.run_asserts(prog, ["assert attack() == 0", "assert attack() == 0"]).codes == [P, P]


def test_sample_sees_only_what_it_needs_of_the_filesystem(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    prog = "import os\ndef exists(p):\n    return os.path.exists(p)\ndef ls(p):\n    return sorted(os.listdir(p))\n"
    tests = [
        f"assert not exists({str(secret)!r})",
        f"assert not exists({os.path.join(repo, 'tests')!r})",
        "assert not exists('/etc/passwd') and not exists('/etc/shadow')",
        "assert exists('/usr/lib') and exists('/proc/self')",
    ]
    if has_layer(pool, "minimal-readonly-fs"):
        assert pool.run_asserts(prog, tests).codes == [P, P, P, P]
