"""``python -m crosscheck.bench``: ours against the native twins (see crosscheck.bench)."""

import sys

from crosscheck.bench import main

sys.exit(main())
