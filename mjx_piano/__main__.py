"""`python3 -m mjx_piano` runs the command line."""

import sys

from mjx_piano.cli import main

sys.exit(main())
