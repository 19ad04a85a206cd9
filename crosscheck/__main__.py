"""``python -m crosscheck``: the cross-check report (see crosscheck.report);
``python -m crosscheck compare|merge ...``: run records (see crosscheck.runs)."""

import sys

if sys.argv[1:2] in (["compare"], ["merge"]):
    from crosscheck.runs import main as runs_main

    sys.exit(runs_main(sys.argv[1:]))

from crosscheck.report import main

sys.exit(main())
