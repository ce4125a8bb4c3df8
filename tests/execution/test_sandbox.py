"""Hostile programs: exact outcome codes, and the host is untouched."""

from __future__ import annotations

import os
import socket
import time

import pytest

from codepref.execution import ExecutionConfig, Outcome, WorkerPool

from .conftest import has_layer

P, F, E, T, S, K = (int(o) for o in Outcome)


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(ExecutionConfig(timeout=1.0, memory_mb=512, slots=2)) as p:
        yield p


def test_isolation_record(pool):
    iso = pool.isolation
    assert iso.level in ("full", "partial")
    assert "rlimits(as,cpu,fsize,nofile,core)" in iso.layers
    assert set(iso.as_dict()) == {"level", "layers", "missing", "notes"}


def test_benign_and_mixed_verdicts(pool):
    prog = "def f(x):\n    return x + 1\n"
    tests = [
        "assert f(1) == 2",
        "assert f(1) == 3",
        "f(None)",
        "import os; os._exit(0)",
        "assert f(2) == 3",
        "while True: pass",
        "import time; time.sleep(60)",
        "assert f(3) == 4",
    ]
    t0 = time.monotonic()
    r = pool.run_asserts(prog, tests)
    assert r.codes == [P, F, E, E, P, T, T, P]  # a hang or crash costs no other test its verdict
    assert time.monotonic() - t0 < 10
    assert "TypeError" in r.stderr_tail


def test_tests_are_independent(pool):
    prog = "calls = []\ndef f():\n    calls.append(1)\n    return len(calls)\n"
    assert pool.run_asserts(prog, ["assert f() == 1"] * 3).codes == [P, P, P]


def test_setup_and_multiline_units(pool):
    prog = "def add(a, b):\n    return a + b\n"
    setup = "import math\ncandidate = add\n"
    tests = [
        "assert candidate(1, 2) == 3\nassert math.isclose(candidate(0.1, 0.2), 0.3)",
        "assert candidate(1, 1) == 3",
    ]
    assert pool.run_asserts(prog, tests, setup).codes == [P, F]
    assert pool.run_asserts("def other(a, b):\n    return 0\n", tests, setup).codes == [E, E]


def test_syntax_error(pool):
    assert pool.run_asserts("def f(:\n", ["pass", "pass"]).codes == [S, S]


@pytest.mark.parametrize(
    "early_exit",
    [
        "exit(0)",
        "import sys\nsys.exit(0)",
        "raise SystemExit(0)",
        "import os\nos._exit(0)",
        "raise KeyboardInterrupt",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    ],
)
def test_exit_before_asserts_never_passes(pool, early_exit):
    codes = pool.run_asserts(f"def f():\n    return 0\n{early_exit}\n", ["assert f() == 1", "pass"]).codes
    assert P not in codes and F not in codes


@pytest.mark.parametrize("inside", ["import os; os._exit(0)", "raise SystemExit(0)", "raise BaseException()"])
def test_exit_inside_test_never_passes(pool, inside):
    prog = f"def f():\n    {inside}\n"
    assert pool.run_asserts(prog, ["assert f() == 1"]).codes in ([E], [F])


def test_cannot_forge_verdicts_through_fds(pool):
    forge = (
        "import os\nfor fd in range(1024):\n    try:\n        os.write(fd, bytes(21) + b'\\x00\\x00')\n"
        "    except OSError:\n        pass\n"
    )
    # garbage on its own channel is the sample's own (wrong) answer: it fails, and forges nothing
    assert pool.run_asserts(forge, ["assert False", "pass"]).codes == [F, F]
    assert pool.run_asserts("import os\nos.closerange(0, 4096)\n", ["pass", "assert False"]).codes == [E, E]
    in_test = "def f():\n    import os\n    os.closerange(0, 4096)\n    return 1\n"
    assert pool.run_asserts(in_test, ["assert f() == 2", "assert f() == 1"]).codes == [E, E]


def test_monkeypatched_builtins_do_not_reach_the_judge(pool):
    # the sample may rewrite its own builtins and modules: the tests use the judge's own
    prog = (
        "import builtins, math\nbuiltins.sorted = lambda *a, **k: [1, 2]\nbuiltins.len = lambda x: 3\n"
        "builtins.abs = lambda x: 0\nbuiltins.all = builtins.any = lambda xs: True\n"
        "math.isclose = lambda *a, **k: True\ndef f():\n    return [2, 1]\n"
    )
    tests = [
        "assert sorted(f()) == [1, 2]",
        "assert len(f()) == 3",
        "assert abs(f()[0] - 5) < 0.1",
        "import math\nassert math.isclose(f()[0], 5)",
        "assert all(x > 5 for x in f())",
    ]
    assert pool.run_asserts(prog, tests).codes == [P, F, F, F, F]
    # rewriting exec/isinstance does not break the sample's own process either (its runtime bound them)
    breaker = "import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.isinstance = lambda *a: True\n"
    assert pool.run_asserts(breaker, ["assert False", "pass"]).codes == [F, P]


def test_network_is_unreachable(pool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    try:
        prog = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
        codes = pool.run_asserts(prog, ["pass"]).codes
        assert codes == ([K] if has_layer(pool, "seccomp") else [E])
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_no_writes_or_deletes_outside_tmp(pool, tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    target = tmp_path / "pwned.txt"
    prog = f"open({str(target)!r}, 'w').write('x')\n"
    assert pool.run_asserts(prog, ["pass"]).codes == [E]
    assert pool.run_asserts(f"import os\nos.remove({str(victim)!r})\n", ["pass"]).codes == [E]
    assert pool.run_asserts(f"import shutil\nshutil.rmtree({str(tmp_path)!r})\n", ["pass"]).codes == [E]
    assert not target.exists() and victim.read_text() == "precious"
    # the sample's own temp dir (its cwd) is writable
    own = "with open('scratch.txt', 'w') as fh:\n    fh.write('ok')\n"
    assert pool.run_asserts(own, ["assert open('scratch.txt').read() == 'ok'"]).codes == [P]


def test_no_new_programs(pool, tmp_path):
    marker = tmp_path / "marker"
    prog = (
        "import os, subprocess\n"
        f"def system():\n    return os.system('touch {marker}')\n"
        f"def run():\n    subprocess.run(['touch', {str(marker)!r}], check=True)\n"
        f"def execv():\n    os.execv('/usr/bin/touch', ['touch', {str(marker)!r}])\n"
    )
    codes = pool.run_asserts(prog, ["assert system() == 0", "run()", "execv()"]).codes
    assert codes[:2] == [F, E]
    assert codes[2] == (K if has_layer(pool, "seccomp") else E)
    assert not marker.exists()


def test_fork_bomb(pool):
    if not has_layer(pool, "setuid"):
        pytest.skip("RLIMIT_NPROC needs the setuid layer (root)")
    t0 = time.monotonic()
    assert pool.run_asserts("import os\nwhile True:\n    os.fork()\n", ["pass"]).codes == [K]
    assert time.monotonic() - t0 < 10
    assert pool.run_asserts("x = 1\n", ["assert x == 1"]).codes == [P]


def test_memory_bomb(pool):
    assert pool.run_asserts("x = bytearray(1 << 36)\n", ["pass"]).codes == [K]
    assert pool.run_asserts("def f():\n    return [0] * (1 << 34)\n", ["f()", "pass"]).codes == [K, P]


def test_timeouts(pool):
    prog = (
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGXCPU, signal.SIG_IGN)\nsignal.alarm(1)\n"
    )
    t0 = time.monotonic()
    assert pool.run_asserts(prog, ["while True: pass", "pass"]).codes == [T, P]
    assert pool.run_asserts("while True:\n    pass\n", ["pass", "pass"]).codes == [T, T]
    assert time.monotonic() - t0 < 8


def test_blocking_input_does_not_hang(pool):
    t0 = time.monotonic()
    assert pool.run_asserts("def f():\n    return input()\n", ["f()"]).codes == [E]
    assert time.monotonic() - t0 < 2


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    allowed = {
        "PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
        "PYTHONIOENCODING", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    }  # fmt: skip
    with WorkerPool(ExecutionConfig(timeout=1.0, slots=1)) as p:
        prog = "import os\ndef env():\n    return dict(os.environ)\n"  # the sample reports its own environment
        tests = [
            "assert 'HF_TOKEN' not in env()",
            "assert not any('hf_secret' in v for v in env().values())",
            f"assert set(env()) <= {allowed!r}",
        ]
        assert p.run_asserts(prog, tests).codes == [P, P, P]


def test_signalling_the_parent_is_harmless(pool):
    prog = (
        "import os, signal\n"
        "def parent():\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "def init():\n    os.kill(1, signal.SIGKILL)\n"
        "def everyone():\n    os.kill(-1, signal.SIGKILL)\n"
        "def group():\n    os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)\n"
    )
    codes = pool.run_asserts(prog, ["parent()", "init()", "everyone()", "group()"]).codes
    assert P not in codes
    for _ in range(2 * pool.config.n_slots):  # every slot still answers
        assert pool.run_asserts("x = 2\n", ["assert x == 2"]).codes == [P]


def test_output_flood_is_capped(pool):
    t0 = time.monotonic()
    assert pool.run_asserts("print('x' * 50_000_000)\n", ["pass"]).codes == [K]
    flood = "import sys\nwhile True:\n    sys.stdout.write('y' * 4096)\n"
    assert pool.run_asserts(flood, ["pass"]).codes == [K]
    assert pool.run_io(flood, [""], ["y"]).codes == [K]
    assert time.monotonic() - t0 < 10


def test_fallback_without_bubblewrap_still_runs():
    with pytest.warns(RuntimeWarning, match="partial isolation"):
        cfg = ExecutionConfig(timeout=1.0, slots=1, isolation="auto")
        import codepref.sandbox.host as sb

        real = sb.find_bwrap
        sb.find_bwrap = lambda: None  # type: ignore[assignment]
        try:
            p = WorkerPool(cfg)
        finally:
            sb.find_bwrap = real  # type: ignore[assignment]
    with p:
        assert "bwrap-namespaces(net,pid,ipc,uts)" in p.isolation.missing
        assert p.run_asserts("def f():\n    return 1\n", ["assert f() == 1", "assert f() == 2"]).codes == [
            P,
            F,
        ]
        if os.geteuid() == 0:
            assert p.run_asserts("import socket\nsocket.socket()\n", ["pass"]).codes[0] in (K, E)


def test_isolation_none_mode():
    with WorkerPool(ExecutionConfig(timeout=1.0, slots=1, isolation="none")) as p:
        assert p.isolation.level == "none"
        assert p.run_asserts("x = 1\n", ["assert x == 1", "assert x == 2"]).codes == [P, F]
