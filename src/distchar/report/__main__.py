"""``python -m distchar.report``: see ``distchar.report.build``."""

from distchar.report.build import main

raise SystemExit(main())
