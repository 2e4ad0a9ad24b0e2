"""`python -m portbinding` is the same as the `portbinding` command."""

from __future__ import annotations

import sys

from portbinding.cli import main

sys.exit(main())
