"""`python -m ponder.cli ...`: the `ponder` command without the console script."""

import sys

from ponder.cli import main

sys.exit(main())
