"""Code that runs inside the sandbox: the execution server (hub), its zygote, and the processes they start.

Every module here is standalone (standard library only, no package-relative imports): the scripts are
launched by path inside bubblewrap and import their siblings as top-level modules; the host imports
``settings`` and ``compare`` through the package. Nothing here ever imports ``codepref``.
"""
