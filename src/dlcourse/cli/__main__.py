"""`python -m dlcourse.cli ...`, the same as the `dlcourse` command."""

import sys

from . import main

sys.exit(main())
