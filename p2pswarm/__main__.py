"""``python -m p2pswarm``: the command-line tool (see :mod:`p2pswarm.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
