"""``python -m crosscheck``: the cross-check report (see crosscheck.report)."""

import sys

from crosscheck.report import main

sys.exit(main())
