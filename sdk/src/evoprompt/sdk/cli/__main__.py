"""`python -m evoprompt.sdk.cli` is the `evoprompt` command."""

import sys

from .main import main

sys.exit(main())
