"""``python -m codepref`` = the ``codepref`` command."""

import sys

from .cli import main

sys.exit(main())
