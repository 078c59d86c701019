"""``python -m modelrunner`` runs the CLI."""

import sys

from modelrunner.cli.entry import main

sys.exit(main())
