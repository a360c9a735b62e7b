"""``python -m edgek8s`` is the ``edgek8s`` command."""

import sys

from edgek8s.cli.main import main

sys.exit(main())
