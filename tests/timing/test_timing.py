"""The timing stage: mode semantics, test subsets, nulls, exactness, ordering, and what a hostile sample
can (not) do to a measurement."""

import math
import os
import uuid

import pytest
from datasets import Dataset

from codepref.errors import ConfigError, DataError
from codepref.pairs import effective_passed
from codepref.provenance import get_provenance
from codepref.sandbox.host import build_jail
from codepref.timing import TimingConfig, measure, runner, time_samples
from codepref.timing.stage import plan_row

LINEAR = "def f(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n"
QUADRATIC = (
    "def f(n):\n    s = 0\n    for i in range(n):\n        for j in range(n):\n"
    "            if j == 0:\n                s += i\n    return s\n"
)
CLOSED = "def f(n):\n    return n * (n - 1) // 2\n"
WRONG = "def f(n):\n    return 0\n"
TESTS = ["assert f(60) == 1770", "assert f(3) == 3"]

# fib: the honest naive solution costs millions of instructions, the honest iterative one thousands
NAIVE = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
ITERATIVE = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
FIB_TESTS = ["assert fib(15) == 610", "assert fib(16) == 987"]

# fast settings for code-optimise semantics
CO_FAST = dict(mode="code-optimise", batch_size=5, max_batches=3, processes=2, cov_threshold=10.0, max_seconds=20)

needs_valgrind = pytest.mark.skipif(
    runner.find_valgrind() is None or build_jail() is None, reason="valgrind/gcc not installed"
)


def _row(samples, passed, tests=TESTS, **extra):
    return {"task_id": "t/sum", "tests": tests, "test_setup": "", "samples": samples, "passed": passed, **extra}


def _fib_row(samples, tests=FIB_TESTS):
    return _row(samples, [True] * len(samples), tests=tests)


def _count(samples, tests=FIB_TESTS, **cfg):
    ds = Dataset.from_list([_row(samples, [True] * len(samples), tests=tests)])
    return time_samples(ds, TimingConfig(mode="count", **{"count_seconds": 30.0, **cfg}))[0]


# -- count mode: exact, and the program's work only --------------------------------------------------------
@needs_valgrind
def test_count_mode_exact_across_runs_ordered_and_null_for_failures():
    ds = Dataset.from_list([_row([QUADRATIC, LINEAR, WRONG, CLOSED, LINEAR], [True, True, False, True, True])])
    cfg = TimingConfig(mode="count", repeats=3)
    a, b = time_samples(ds, cfg), time_samples(ds, cfg)  # two runs of the stage, two pools
    ra = a[0]
    assert ra["cost"][2] is None and ra["runtime_ns"][2] is None and ra["timing_stable"][2] is None
    q, lin, closed = ra["cost"][0], ra["cost"][1], ra["cost"][3]
    assert q > 5 * lin > 5 * closed >= 0  # O(n^2) > O(n) > O(1)
    assert ra["runtime_ns"][0] > ra["runtime_ns"][1] > ra["runtime_ns"][3] >= 0
    assert a[0]["cost"] == b[0]["cost"]  # the same programs get the same counts, run after run
    assert ra["cost"][1] == ra["cost"][4]  # ... and the same program twice in a row ties exactly
    for i in (0, 1, 3, 4):
        assert ra["runtime_cov"][i] == 0.0 and ra["timing_stable"][i] is True  # repeats agree exactly
    rec = get_provenance(a)["time"]
    assert rec["mode"] == "count" and rec["valgrind_version"].startswith("valgrind")
    assert rec["counter"] == "cachegrind" and "--tool=cachegrind" in rec["valgrind_args"]
    assert rec["cpu_model"] and rec["python_version"] and rec["ns_per_instruction"] > 0
    assert "seccomp" in " ".join(rec["isolation"]["layers"])
    assert str(a.features["cost"]) == "List(Value('int64'))"


@needs_valgrind
def test_count_measures_the_program_not_the_harness():
    # The harness's work (decoding requests, encoding answers) is counted by an echo run of the same
    # conversation and subtracted: an O(1) answer costs about nothing however often it is asked, and a
    # loop costs in proportion to its iterations.
    one = ["assert f(3) == 3"]
    many = ["assert f(3) == 3", "assert f([1, 2, 3][2]) == 3"] * 10
    r = _count([CLOSED, "def f(n):\n    return 3\n"], tests=one)
    r_many = _count([CLOSED], tests=many)
    assert r["cost"][0] < 5_000 and r["cost"][1] < 5_000
    assert r_many["cost"][0] < 20 * 3_000  # 20 calls: nothing near the ~100k instructions a call costs the harness
    loops = _count([LINEAR], tests=["assert f(1000) == 499500"])["cost"][0]
    loops2 = _count([LINEAR], tests=["assert f(2000) == 1999000"])["cost"][0]
    assert 1.8 < loops2 / loops < 2.4


@needs_valgrind
def test_count_calibration_is_shared_across_shards():
    ds = Dataset.from_list([_row([LINEAR], [True]), _row([QUADRATIC], [True])])
    out = time_samples(ds, TimingConfig(mode="count", shard_size=1, repeats=1))
    ns_per_ir = [r["runtime_ns"][0] / r["cost"][0] for r in out]
    assert ns_per_ir[0] == pytest.approx(ns_per_ir[1]) and ns_per_ir[0] > 0
    assert measure.CALIBRATION_IR.get("ir", 0) > 0


# -- hostile samples: a slow program is never measured below its honest cost ---------------------------------
CACHER = """
import builtins, os, sys

_STORES = []
def _dirs():
    out = []
    for d in (os.getcwd(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), os.path.dirname(os.getcwd())):
        if d and d not in out:
            out.append(d)
    return out

def _get(n):
    for holder in (builtins, sys, os):
        v = getattr(holder, "cp_fib_cache", {}).get(n)
        if v is not None:
            return v
    mod = sys.modules.get("cp_fib_cache")
    if isinstance(mod, dict) and n in mod:
        return mod[n]
    if os.environ.get("CP_FIB_%d" % n):
        return int(os.environ["CP_FIB_%d" % n])
    for d in _dirs():
        try:
            with open(os.path.join(d, "cp_fib_%d" % n)) as fh:
                return int(fh.read())
        except (OSError, ValueError):
            pass
    return None

def _put(n, v):
    for holder in (builtins, sys, os):
        try:
            if not hasattr(holder, "cp_fib_cache"):
                setattr(holder, "cp_fib_cache", {})
            getattr(holder, "cp_fib_cache")[n] = v
        except Exception:
            pass
    sys.modules.setdefault("cp_fib_cache", {})[n] = v
    os.environ["CP_FIB_%d" % n] = str(v)
    for d in _dirs():
        try:
            with open(os.path.join(d, "cp_fib_%d" % n), "w") as fh:
                fh.write(str(v))
        except OSError:
            pass

def _naive(n):
    return n if n < 2 else _naive(n - 1) + _naive(n - 2)

def fib(n):
    v = _get(n)
    if v is None:
        v = _naive(n)
        _put(n, v)
    return v
"""

REPORTER = """
import gc, json, os, struct, sys

_WORDS = ("time", "report", "count", "send", "write", "status", "result", "measure", "record", "ctl", "verdict",
          "cpu", "snapshot", "total", "profile", "flush", "queue")
_SKIP = ("serve", "recv", "read", "wait", "loop", "exit", "kill", "abort", "fork", "exec", "main", "close")
_FORGED = [(), (1,), (0, 1), (3, b"V\\x00\\x00\\x00\\x00\\x00"), ({"ok": True, "ir": 1, "cpu_ns": 1},),
           (b"C\\x00\\x00\\x00\\x00",), (["ok", 1, []],), (4, b"R")]
_FRAMES = [b"V\\x00\\x00\\x00\\x00\\x00", b"C\\x01\\x00\\x00\\x00", b"R", struct.pack("<I", 11) + b'["ok",1,[]]',
           json.dumps({"ok": True, "ir": 1, "cpu_ns": 1}).encode(), b"\\nsummary: 1\\n"]

def _candidates():
    objs = list(gc.get_objects())
    f = sys._getframe()
    while f is not None:
        objs.append(f)
        objs.extend(f.f_locals.values())
        objs.extend(f.f_globals.values())
        f = f.f_back
    for m in list(sys.modules.values()):
        objs.extend(getattr(m, "__dict__", {}).values())
    seen = set()
    for o in objs:
        for fn in [o] + [getattr(o, a, None) for a in dir(type(o))[:200]] if not isinstance(o, (int, str)) else []:
            name = getattr(fn, "__name__", "") or ""
            code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__func__", None), "__code__", None)
            if code is None or id(fn) in seen or code.co_filename == "<solution>":
                continue
            low = name.lower()
            if any(w in low for w in _WORDS) and not any(s in low for s in _SKIP):
                seen.add(id(fn))
                yield fn

def _forge():
    for fn in list(_candidates())[:400]:
        for args in _FORGED:
            try:
                fn(*args)
            except BaseException:
                pass
    for fd in range(0, 40):
        if fd in (0, 1, 2, 3):  # keep the channel usable, or the run just fails (that is no win)
            continue
        for data in _FRAMES:
            try:
                os.write(fd, data)
            except OSError:
                pass
"""

TAMPERER = """
import os

def _tamper():
    me = os.getpid()
    dirs = []
    for top in (os.getcwd(), "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~"), "/"):
        for root, subdirs, files in os.walk(top):
            if root.count("/") > 4 or root.startswith(("/proc", "/sys", "/usr", "/dev/")):
                subdirs[:] = []
                continue
            dirs.append(root)
            for name in files:
                path = os.path.join(root, name)
                try:
                    with open(path, "rb") as fh:
                        fh.seek(max(0, os.path.getsize(path) - 4096))
                        tail = fh.read()
                except OSError:
                    continue
                if b"summary:" in tail or b"events:" in tail or name.isdigit():
                    for act in ("rewrite", "append", "unlink"):
                        try:
                            if act == "rewrite":
                                with open(path, "w") as fh:
                                    fh.write("events: Ir\\nsummary: 1\\n")
                            elif act == "append":
                                with open(path, "a") as fh:
                                    fh.write("\\nsummary: 1\\n")
                            else:
                                os.unlink(path)
                        except OSError:
                            pass
            if len(dirs) > 300:
                break
    for d in dirs[:50]:
        for pid in range(max(2, me - 8), me + 64):
            p = os.path.join(d, str(pid))
            try:
                os.symlink("/dev/null", p)
            except OSError:
                pass
            try:
                with open(p, "w") as fh:
                    fh.write("events: Ir\\nsummary: 1\\n")
            except OSError:
                pass
    for fd in range(4, 1024):
        try:
            os.write(fd, b"\\nsummary: 1\\n")
        except OSError:
            pass
"""


# files a writer cannot reopen (created read-only: no chmod needed, the mode is given at creation; a FIFO; a
# directory) in every writable directory, under its own pid as a counter may name its output;
# then a umask under which whatever is created next is unwritable
PLANTER = """
import os

def _writable(path, dirs):
    if path not in dirs and os.path.isdir(path) and os.access(path, os.W_OK):
        dirs.append(path)

def _plant():
    me = os.getpid()
    dirs = []
    tops = ("/tmp", "/var/tmp", "/dev/shm", os.getcwd(), os.path.dirname(os.getcwd()), os.path.expanduser("~"))
    for top in tops:
        for root, subdirs, files in os.walk(top):
            if root.count("/") > 4:
                subdirs[:] = []
            _writable(root, dirs)
    # directories that cannot be listed are found by name: every path the command lines, environment and open
    # files of this process, its parent and init mention (and the folders above them), and guesses
    words = []
    for source in ("/proc/self/cmdline", "/proc/self/environ", "/proc/%d/cmdline" % os.getppid(), "/proc/1/cmdline"):
        try:
            with open(source, "rb") as fh:
                words += fh.read().replace(b"=", b"\\0").split(b"\\0")
        except OSError:
            pass
    try:
        words += [os.readlink("/proc/self/fd/" + fd).encode() for fd in os.listdir("/proc/self/fd")]
    except OSError:
        pass
    for word in words:
        path = word.decode("utf-8", "replace")
        while path.startswith("/") and len(path) > 1:
            _writable(path, dirs)
            path = os.path.dirname(path)
    for top in tops:
        for name in ("counts", "count", "counter", "cachegrind", "callgrind", "valgrind", "profile", "out",
                     "output", "measure", "timing", "stats", "ir", "perf"):
            _writable(os.path.join(top, name), dirs)
    for d in dirs[:40]:
        for name in ("%d", "cachegrind.out.%d", "callgrind.out.%d"):
            p = os.path.join(d, name % me)
            try:
                if KIND == "read-only":
                    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                    os.write(fd, b"events: Ir\\nsummary: 1\\n")
                    os.close(fd)
                elif KIND == "fifo":
                    os.mkfifo(p, 0o666)
                else:
                    os.mkdir(p, 0o700)
            except OSError:
                pass
    os.umask(0o777)
"""


def _then_naive(attack: str, name: str) -> str:
    """``attack`` once, on the first call, then the honest naive fib (the slow program of the attacks)."""
    return attack + (
        f"\n_done = []\ndef fib(n):\n    if not _done:\n        _done.append(1)\n        {name}()\n"
        "    return n if n < 2 else _fib(n - 1) + _fib(n - 2)\n\n"
        "def _fib(n):\n    return n if n < 2 else _fib(n - 1) + _fib(n - 2)\n"
    )


REPORTER = _then_naive(REPORTER, "_forge")
TAMPERER = _then_naive(TAMPERER, "_tamper")
PLANTERS = [_then_naive(f"KIND = {kind!r}\n" + PLANTER, "_plant") for kind in ("read-only", "fifo", "directory")]

NATIVE_CODE_PROBE = """
import importlib

def probe(check_mmap):
    got = []
    for name in ("ctypes", "_ctypes", "cffi", "_testcapi", "_testinternalcapi", "_xxtestfuzz", "_testbuffer"):
        try:
            importlib.import_module(name)
            got.append(name)
        except BaseException:
            pass
    try:
        import mmap
        if check_mmap:  # (a counted run's valgrind grows its translation cache by such mappings)
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
            got.append("rwx-mmap")
    except BaseException:
        pass
    return got
"""


@needs_valgrind
def test_count_hostile_samples_never_below_their_honest_cost_and_neighbours_unchanged():
    alone = _count([NAIVE, ITERATIVE], repeats=1)
    honest = alone["cost"][0]
    assert honest > 50 * alone["cost"][1] > 0
    r = _count([CACHER, REPORTER, TAMPERER, *PLANTERS, NAIVE, ITERATIVE], repeats=3)
    for i, name in enumerate(("cacher", "reporter", "tamperer", "read-only", "fifo", "directory")):
        cost = r["cost"][i]
        assert cost is None or cost >= 0.9 * honest, (name, cost, honest)
    assert r["cost"][0] is not None and r["runtime_cov"][0] == 0.0  # every counted run of the cacher starts cold
    assert r["cost"][6:] == alone["cost"]  # the neighbours' counts are exactly what they are alone


@needs_valgrind
def test_count_mode_offers_no_native_call_primitive():
    r = _count([NATIVE_CODE_PROBE], tests=["assert probe(False) == [], probe(False)"], repeats=1)
    assert r["cost"][0] is not None  # the run passed: no ctypes, cffi, test modules in a counted run


def test_cpu_time_modes_cannot_be_cached_offloaded_or_forged():
    offload = (
        "import os, subprocess, sys\n"
        "def _try_offload(n):\n"
        "    for attempt in (lambda: os.fork(), lambda: subprocess.run([sys.executable, '-c', 'pass']),\n"
        "                    lambda: __import__('multiprocessing').Process(target=print).start()):\n"
        "        try:\n"
        "            pid = attempt()\n"
        "            if pid == 0:\n"
        "                os._exit(0)\n"
        "            return True\n"
        "        except BaseException:\n"
        "            pass\n"
        "    return False\n"
        "def fib(n):\n"
        "    if _try_offload(n):\n"
        "        return -1\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
    )
    probe_ok = (
        NATIVE_CODE_PROBE
        + "\ndef fib(n):\n    assert 'rwx-mmap' not in probe(True)\n"
        + ("    return n if n < 2 else _f(n - 1) + _f(n - 2)\n_f = lambda n: n if n < 2 else _f(n - 1) + _f(n - 2)\n")
    )
    big = ["assert fib(20) == 6765", "assert fib(21) == 10946"]  # CPU time: well above a run's fixed cost
    ds = Dataset.from_list([_fib_row([NAIVE, CACHER, REPORTER, offload, probe_ok, ITERATIVE], big)])
    out = time_samples(ds, TimingConfig(**{**CO_FAST, "processes": 1, "batch_size": 7}))[0]
    naive = out["runtime_ns"][0]
    assert naive > 3 * out["runtime_ns"][5]
    for i in (1, 2, 3, 4):
        assert out["runtime_ns"][i] is None or out["runtime_ns"][i] >= 0.3 * naive, (i, out["runtime_ns"][i], naive)
    assert out["runtime_ns"][1] is not None  # the cacher is measured, and every run pays for its work
    assert out["runtime_ns"][4] is not None  # no anonymous executable memory in a timed run


def test_one_bad_sample_stays_one_bad_sample_in_every_mode():
    bad = {
        "exits": "import os\ndef fib(n):\n    os._exit(0)\n",
        "garbage on the channel": (
            "import os\ndef fib(n):\n    os.write(3, b'\\xff' * 64 + b'[\"ok\"')\n    return 610\n"
        ),
        "hangs": "def fib(n):\n    while True:\n        pass\n",
        "raises SystemExit": "def fib(n):\n    raise SystemExit(0)\n",
        "huge answer": "def fib(n):\n    return [n] * 10_000_000\n",
        "kills itself": "import os, signal\ndef fib(n):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
    }
    progs = [*bad.values(), NAIVE, ITERATIVE]
    fast = dict(timeout=3.0, max_seconds=10)
    for cfg in (
        TimingConfig(**{**CO_FAST, **fast, "processes": 1}),
        TimingConfig(mode="interleaved", rounds=4, warmup_rounds=1, cov_threshold=10.0, **fast),
    ):
        out = time_samples(Dataset.from_list([_fib_row(progs)]), cfg)[0]
        for i, name in enumerate(bad):
            assert out["runtime_ns"][i] is None and out["timing_stable"][i] is False, (cfg.mode, name)
        assert out["runtime_ns"][-2] > out["runtime_ns"][-1] > 0, cfg.mode
        assert all(out["timing_stable"][-2:]), cfg.mode
        if cfg.mode == "interleaved":
            assert out["runtime_ratio"][-2] > 1 > out["runtime_ratio"][-1]


@needs_valgrind
def test_count_mode_bad_samples_are_null_and_others_exact():
    bad = [
        "import os\ndef fib(n):\n    os._exit(0)\n",
        "import os\ndef fib(n):\n    os.write(3, b'\\xff' * 64)\n    return 610\n",
        "def fib(n):\n    while True:\n        pass\n",
    ]
    alone = _count([NAIVE, ITERATIVE], repeats=1)
    r = _count([*bad, NAIVE, ITERATIVE], repeats=1, count_seconds=3.0)
    assert r["cost"][:3] == [None] * 3 and r["timing_stable"][:3] == [False] * 3
    assert r["cost"][3:] == alone["cost"]


# -- code-optimise ------------------------------------------------------------------------------------------
def test_code_optimise_unstable_sample_is_marked_failed():
    # Every run draws its own cost (0 to 200,000 iterations, heavily skewed): CoV ~1 in every batch, never
    # stable; the steady sample gets many batches, so a noisy machine cannot make it look unstable.
    noisy = (
        "import os\n"
        "def f(n):\n    k = int(200000 * (os.urandom(1)[0] / 255) ** 4)\n    s = 0\n    for i in range(k):\n"
        "        s += 1\n    return n * (n - 1) // 2\n"
    )
    steady = "def f(n):\n    s = 0\n    for i in range(3000):\n        s += i\n    return n * (n - 1) // 2\n"
    ds = Dataset.from_list([_row([noisy, steady, WRONG], [True, True, False])])
    cfg = TimingConfig(**{**CO_FAST, "cov_threshold": 0.3, "batch_size": 20, "max_batches": 30})
    out = time_samples(ds, cfg)[0]
    assert out["runtime_ns"][0] is None and out["timing_stable"][0] is False  # never stable → failed
    assert out["runtime_ns"][1] > 0 and out["timing_stable"][1] is True
    assert out["runtime_ns"][2] is None and out["timing_stable"][2] is None
    ok = effective_passed([True, True, False], [float("nan") if v is None else v for v in out["runtime_ns"]])
    assert ok.tolist() == [False, True, False]
    # Code-Optimise §3.2 "we set passed = False": every later reader (evaluation included) sees it failed
    assert out["passed"] == [False, True, False]
    assert TimingConfig(mode="code-optimise").max_seconds is None  # Algorithm 1 has no wall-clock budget


def test_code_optimise_runs_start_cold():
    # A program that keeps state between runs of one process would get cheaper run after run; every timed
    # run is a fresh process, so the count of its loop stays the same.
    drifting = (
        "import builtins\n"
        "builtins.cp_runs = getattr(builtins, 'cp_runs', 0) + 1\n"
        "def f(n):\n    s = 0\n    for i in range(40000 // builtins.cp_runs):\n        s += 1\n"
        "    return n * (n - 1) // 2\n"
    )
    fixed = "def f(n):\n    s = 0\n    for i in range(40000):\n        s += 1\n    return n * (n - 1) // 2\n"
    out = time_samples(Dataset.from_list([_row([drifting, fixed], [True, True])]), TimingConfig(**CO_FAST))[0]
    assert out["runtime_ns"][0] > 0.5 * out["runtime_ns"][1]


def test_code_optimise_subset_of_tests_is_not_charged_for_slow_test(tmp_path):
    slow_big = "def f(n):\n    s = 0\n    for i in range(n):\n        s += 1\n    return s\n"
    fast = "def f(n):\n    return n\n"
    tests = ["assert f(3) == 3", "assert f(200000) == 200000"]
    row = _row([slow_big, fast], [True, True], tests=tests, credible_tests=[0])
    ds = Dataset.from_list([row])
    cfg = TimingConfig(**{**CO_FAST, "processes": 1})
    full = time_samples(ds, cfg)[0]["runtime_ns"]
    sub = time_samples(ds, TimingConfig(**{**CO_FAST, "processes": 1, "tests": "credible_tests"}))[0]["runtime_ns"]
    assert full[0] > 5 * full[1]  # the big test dominates the loop version
    assert sub[0] < 3 * sub[1]  # ... and is not charged when outside the subset
    call = time_samples(
        ds, TimingConfig(**{**CO_FAST, "processes": 1}), select_tests=lambda r: [0], work_dir=tmp_path
    )[0]["runtime_ns"]
    assert call[0] < 3 * call[1]


# -- test selection and input validation ----------------------------------------------------------------------
def test_credible_tests_from_score_and_gen_exec_matrix():
    row = _row(
        ["p0", "p1", "p2"],
        [True, True, False],
        gen_tests=["g0", "g1", "g2"],
        gen_exec_matrix=[[0, 1, 0], [0, 0, 0], [1, 1, 1]],
        score=[2.0, 1.0, 0.0],
    )
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 1}  # failed samples are not timed
    assert plans[0]["tests"] == ["g0", "g2"] and plans[1]["tests"] == ["g0", "g2"]  # passed by argmax (sample 0)
    assert plans[0]["untrusted"] is True  # model-written tests run in a judge of their own
    plain = plan_row(_row(["a", "b"], [True, True], exec_matrix=[[0, 0], [0, 0]]), 0, TimingConfig(), None)
    assert plain[1]["tests"] == TESTS and not plain[1].get("untrusted")


def test_credible_tests_without_ground_truth_time_samples_passing_every_credible_test():
    # CodeDPO has no ground-truth tests, hence no `passed`: the credible tests decide who is timed
    row = {
        "task_id": "t/gen",
        "tests": [],
        "samples": ["p0", "p1", "p2"],
        "gen_tests": ["g0", "g1"],
        "gen_exec_matrix": [[0, 0], [0, 1], [0, 0]],
        "score": [1.0, 2.0, 0.5],
    }
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 1, 2}  # top = sample 1 passes g0 only: credible = [g0]
    assert all(p["tests"] == ["g0"] for p in plans.values())
    row["score"] = [2.0, 1.0, 0.5]  # top = sample 0 passes both: sample 1 fails g1 and takes the penalty
    plans = plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None)
    assert set(plans) == {0, 2} and plans[2]["tests"] == ["g0", "g1"]
    row["gen_exec_matrix"] = [[1, 1], [0, 1], [0, 0]]  # the top sample passes no test: no credible test
    assert plan_row(row, 0, TimingConfig(mode="code-optimise", tests="credible"), None) == {}
    sols = [LINEAR, WRONG, CLOSED]
    ds = Dataset.from_list(
        [
            {
                "task_id": "t/gen",
                "tests": [],
                "samples": sols,
                "gen_tests": TESTS,
                "gen_exec_matrix": [[0, 0], [1, 1], [0, 0]],
                "score": [2.0, 0.0, 1.0],
            }
        ]
    )
    out = time_samples(ds, TimingConfig(**{**CO_FAST, "tests": "credible"}))[0]
    assert out["runtime_ns"][0] is not None and out["runtime_ns"][2] is not None
    assert out["runtime_ns"][1] is None and out["timing_stable"][1] is None


def test_bad_input_raises_data_error_naming_row_and_field():
    ds = Dataset.from_list([_row([LINEAR, CLOSED], [True])])
    with pytest.raises(DataError, match=r"task_id 't/sum', field 'passed'"):
        time_samples(ds, TimingConfig(**CO_FAST))
    with pytest.raises(DataError, match="field 'credible_tests'"):
        time_samples(
            Dataset.from_list([_row([LINEAR], [True], credible_tests=[7])]),
            TimingConfig(**{**CO_FAST, "tests": "credible_tests"}),
        )
    with pytest.raises(DataError, match="passed"):
        time_samples(Dataset.from_list([{"task_id": "x", "samples": ["pass"], "tests": []}]), TimingConfig())
    with pytest.raises(ConfigError):
        TimingConfig(mode="fastest")
    with pytest.raises(ConfigError):
        TimingConfig(repeats=0)


def test_hostile_sample_cannot_escape_during_timing():
    target = f"/work/main/.codepref-timing-escape-{uuid.uuid4().hex}"
    home_target = os.path.join(os.path.expanduser("~"), f".codepref-escape-{uuid.uuid4().hex}")
    writes = (
        "import os\n"
        f"for p in ({target!r}, {home_target!r}, '/etc/codepref-escape'):\n"
        "    try:\n        open(p, 'w').write('x')\n    except OSError:\n        pass\n"
        "open('inside_tmp_is_fine.txt', 'w').write('ok')\n" + CLOSED
    )
    sock = "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=1)\n" + CLOSED
    execs = "import os\nos.execv('/bin/sh', ['sh', '-c', 'touch /tmp/x'])\n" + CLOSED
    ds = Dataset.from_list([_row([writes, sock, execs, CLOSED], [True] * 4)])
    out = time_samples(ds, TimingConfig(**{**CO_FAST, "processes": 1}))[0]
    assert not os.path.exists(target) and not os.path.exists(home_target)
    assert not os.path.exists("/etc/codepref-escape")
    assert out["runtime_ns"][0] is not None  # writing inside its own temp dir is allowed
    assert out["runtime_ns"][1] is None and out["timing_stable"][1] is False  # socket: killed
    assert out["runtime_ns"][2] is None and out["timing_stable"][2] is False  # exec: killed
    assert out["runtime_ns"][3] is not None


def test_interleaved_mode_ratio_and_resume(tmp_path):
    ds = Dataset.from_list([_row([QUADRATIC, LINEAR, WRONG], [True, True, False])])
    cfg = TimingConfig(mode="interleaved", rounds=5, warmup_rounds=1, cov_threshold=1.0)
    out = time_samples(ds, cfg, work_dir=tmp_path)
    r = out[0]
    assert r["runtime_ns"][0] > r["runtime_ns"][1] > 0 and r["runtime_ns"][2] is None
    assert r["runtime_ratio"][0] > 1 > r["runtime_ratio"][1]
    assert math.isfinite(r["runtime_cov"][0])
    again = time_samples(ds, cfg, work_dir=tmp_path)  # resumed from the saved shard: identical
    assert again.to_list() == out.to_list()
    assert get_provenance(out)["time"]["mode"] == "interleaved"


@needs_valgrind
def test_count_mode_stdin_stdout_and_model_written_tests():
    # stdin/stdout problems: one counted process per input, the empty program's run subtracted
    io = {"input": ["3\n", "400\n"], "output": ["3\n", "79800\n"]}
    loop = "n = int(input())\ns = 0\nfor i in range(n):\n    s += i\nprint(s)\n"
    closed = "n = int(input())\nprint(n * (n - 1) // 2)\n"
    wrong = "print(0)\n"
    row = {"task_id": "t/io", "tests": [], "samples": [loop, closed, wrong], "passed": [True, True, False]}
    out = time_samples(Dataset.from_list([{**row, "io_tests": io}]), TimingConfig(mode="count"))[0]
    assert out["cost"][0] > 100 * 30 and out["cost"][0] > 3 * out["cost"][1]
    assert out["runtime_cov"][:2] == [0.0, 0.0] and out["cost"][2] is None
    # CodeDPO's credible tests are model-written: judged by a judge of their own, counted the same way
    gen = {
        "task_id": "t/gen",
        "tests": [],
        "samples": [QUADRATIC, LINEAR, WRONG],
        "gen_tests": TESTS,
        "gen_exec_matrix": [[0, 0], [0, 0], [1, 1]],
        "score": [2.0, 1.0, 0.0],
    }
    cfg = TimingConfig(mode="count", tests="credible")
    a, b = time_samples(Dataset.from_list([gen]), cfg)[0], time_samples(Dataset.from_list([gen]), cfg)[0]
    assert a["cost"][0] > 5 * a["cost"][1] > 0 and a["cost"][2] is None
    assert a["cost"] == b["cost"]
