"""``python -m advmri <command> [options]``: the same as the ``advmri`` console script (:mod:`advmri.app.cli`)."""

import sys

from advmri.app.cli import main

sys.exit(main())
