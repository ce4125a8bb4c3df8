"""codepref: self-generated, execution-verified preference data for code language models.

Stages (one module each, named after the stage): ``problems`` → ``sampling`` →
``execution`` → ``timing`` → ``ranking`` → ``pairs`` → ``hub``; training recipes live in
``recipes/`` and evaluation in ``evaluation``. Every stage maps a Dataset with one row per
problem to a Dataset with more columns (SPEC §3).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("codepref")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
