"""`python -m hub`: the same as the vigil-hub command."""

import sys

from hub.cli import main

sys.exit(main())
