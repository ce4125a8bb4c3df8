"""Timing stage: stable runtimes of passing samples, always measured inside the execution sandbox.

``time_samples(ds, TimingConfig(mode=...), work_dir=...)`` adds, per sample (nulls for failed samples):

* ``runtime_ns``   list[float?] — runtime estimate (meaning per mode below); null if failed, unstable or errored;
* ``runtime_cov``  list[float?] — coefficient of variation of that measurement;
* ``timing_stable`` list[bool?] — True measured & stable; False passing but unstable/errored (the
  Code-Optimise "mark failed": runtime null, so ``pairs.effective_passed`` treats it as failed);
  null = not timed (the sample failed execution);
* ``cost``         list[int?] — mode ``count`` only: instructions of the program's work in a run (median);
* ``runtime_ratio`` list[float?] — mode ``interleaved`` only: median per-round CPU-time ratio to the
  round's median (or first) candidate.

Every mode is made of *timed runs* (``WorkerPool.timed_job``). A timed run is a fresh sample process
(forked from a fixed state, so nothing an earlier run, a warm-up or another sample left in an
interpreter reaches it) that loads the program once and answers every timed test through the
two-party judge: every answer is checked, and a run with a wrong answer is no measurement. Its cost is
read from outside the sample's process: the sandbox server reads the process's CPU clock
(``clock_gettime`` on the pid's clock, all threads) when the process sits waiting at its start and
after its last answer, and, for counted runs, valgrind's own totals for the process. The sample can
write neither: it decides only its return values and output. During a timed run the sample can create
no process (no fork; threads are allowed, their CPU time is the process's), no anonymous executable
memory (no ``mprotect``/``mmap`` with ``PROT_EXEC`` except of files, no ``memfd_create``), and cannot
change what a path is (no ``chmod``/``mknod``/``symlink``/``link``).

Modes
-----
``count`` (default; ours). Exact instruction counts. A counting zygote runs under valgrind's
cachegrind (no client requests that start, stop or reset counting; ``ctypes`` and the stdlib's test
modules do not exist in its mount namespace; address randomisation off; ``PYTHONHASHSEED`` fixed) and
forks counted sample processes from a template that waits in C between forks, so every counted process
starts from the same interpreter state. A counted process writes a *snapshot* of its count at its
start (a child that exits at once) and its total at its exit; the difference is the run. The run's
harness share (decoding the judge's requests, encoding answers: ~100-200k instructions per call) is
measured by an *echo* of the same conversation: a second counted process served the same requests,
replayed by the judge, with the same harness code, the program's objects standing in with the run's
recorded answers through a C callable (cheaper than any Python function, so a program is never charged
less than its work). ``cost`` = the run's count − the echo's (0 for an empty program, clamped at 0;
below ~2,000 instructions is within the harness's resolution), median of ``repeats``=2 runs;
``runtime_cov`` = CoV of those runs (0.0: the same program on the same inputs gets the same count in
every run, in every pool, on a machine of the same kind). ``runtime_ns`` = cost × ns per instruction of
a trusted calibration workload (counted the same way, timed natively in the toolkit's process): an
estimate on this CPU that ranks exactly like ``cost``. Python's garbage collector is off during a timed
run (as ``timeit`` does); a program may turn it on, at its own cost.

``code-optimise`` (faithful). Algorithm 1 of the paper: CPU time of a run (the program's definition and
every timed test), batches of ``batch_size``=50 runs, stop at the first batch with CoV ≤
``cov_threshold``=0.1, at most ``max_batches``=1000 batches (no wall-clock budget unless ``max_seconds``
is set); a sample that never gets a stable batch is marked failed (``passed`` = False, as §3.2
does). The procedure runs ``processes``=5 times per solution;
``runtime_ns`` = mean of the 5 last-stable-batch means, ``runtime_cov`` = CoV across the 5. Each run is
a fresh process, so it includes the process's own start-up after the fork (~0.3 ms): compare runtimes
of one problem's samples, not across problems.

``interleaved``. The candidates of one problem are timed round-robin on one server (who goes first
rotates every round), ``warmup_rounds`` first; ``runtime_ns`` = median CPU time per run,
``runtime_ratio`` = median over rounds of (candidate's time / the round's geometric mean over
candidates, or the first candidate), ``runtime_cov`` = CoV of those per-round ratios (shared machine
noise cancels in the ratio). The reference is made of the candidates themselves: a candidate's own runtime
moves its neighbours' ratios, and one whose time swings from run to run can make them unstable (null);
``runtime_ns`` (its own median) is its own. Mode ``count`` (the default) has no such coupling. A
candidate whose run fails is dropped from its own measurement only.

One bad sample stays one bad sample (in ``interleaved`` mode: see above): a crash, a hang (the
server's wall-clock deadline), a wrong answer or a malformed message marks that sample's timing null
(``timing_stable`` False) with the reason in the log, and changes no other sample's measurement.
"""

from .config import MODES, TimingConfig
from .measure import Measurement
from .stage import time_samples

__all__ = ["MODES", "Measurement", "TimingConfig", "time_samples"]
