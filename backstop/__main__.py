"""``python -m backstop`` runs the command line (see :mod:`backstop.cli`)."""

import sys

from backstop.cli import main

sys.exit(main())
