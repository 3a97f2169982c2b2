"""`python -m evoprompt.cli` is the `evoprompt` command."""

import sys

from . import main

sys.exit(main())
