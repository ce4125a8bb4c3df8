"""``python -m codepref.cli`` = the ``codepref`` command."""

import sys

from . import main

sys.exit(main())
