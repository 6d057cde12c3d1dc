"""`python -m provision.demo [DIR] [--seconds N]`: the scripted demo (see `provision.demo.run`)."""

import sys

from provision.demo.run import main

sys.exit(main())
