"""`python -m bench` (what `task bench` runs)."""

import sys

from bench.run import main

sys.exit(main())
