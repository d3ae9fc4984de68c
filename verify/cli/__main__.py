"""``python -m logitrank.verify.cli`` runs the ``logitrank`` command."""

import sys

from . import main

sys.exit(main())
