"""The child-process layer shared by the execution and timing stages.

``host`` decides how a sandbox server is started (bubblewrap's filesystem view, environment, uids,
typed :class:`SandboxSettings`); ``inside/`` holds what runs in the sandbox: the execution server, the
zygote that forks every sample and judge process, the confinement of those processes, the seccomp
filter, the wire formats and the two runtimes of two-party judging (``sample``, ``judge``).
"""

from .host import SAFE_ENV, SandboxSettings, bwrap_argv, find_bwrap, server_argv, slot_uids, visible_paths

__all__ = ["SAFE_ENV", "SandboxSettings", "bwrap_argv", "find_bwrap", "server_argv", "slot_uids", "visible_paths"]
