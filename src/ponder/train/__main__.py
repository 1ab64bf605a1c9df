"""`python -m ponder.train`: the trainer's command line."""

from ponder.cli.train import main

raise SystemExit(main())
