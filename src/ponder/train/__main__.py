"""`python -m ponder.train`: the trainer's command line."""

from ponder.train.cli import main

raise SystemExit(main())
