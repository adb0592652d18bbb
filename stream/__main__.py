"""``python -m stream`` is the ``skewstream`` command."""

import sys

from stream.cli import main

sys.exit(main())
