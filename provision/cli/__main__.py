"""`python -m provision.cli`: the `collab` command without its installed script."""

import sys

from provision.cli import main

sys.exit(main())
