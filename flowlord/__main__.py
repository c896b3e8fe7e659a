"""`python -m flowlord` runs the `flowlord` command."""

import sys

from flowlord.cli import main

sys.exit(main())
