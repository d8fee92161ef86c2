"""`python -m streams ...`: the `hedger` command line without the console script."""

import sys

from streams.cli.main import main

sys.exit(main())
