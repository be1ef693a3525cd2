"""``python -m mailbench``: what ``benchmarks/run`` executes."""

import sys

from mailbench.cli import main

sys.exit(main())
