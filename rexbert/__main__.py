"""`python -m rexbert ...` is the `rexbert` command (what launchers such as torchrun start)."""

import sys

from rexbert.cli import main

sys.exit(main())
