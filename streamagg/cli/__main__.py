"""`python -m streamagg.cli …` runs the `streamagg` command."""

import sys

from streamagg.cli import main

sys.exit(main())
