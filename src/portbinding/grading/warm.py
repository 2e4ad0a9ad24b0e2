"""What every ``nbgrader autograde`` of this course loads, imported once by the grading forkserver.

See ``runner``: the forkserver imports this module, and each submission's process is forked
from it with all of this already in memory (nbgrader's apps and converters, nbformat and its
JSON schema validator, nbclient, jupyter_client, the sandbox and the door).
"""

from __future__ import annotations

import nbformat
import nbgrader.apps.autogradeapp
import nbgrader.apps.nbgraderapp
import nbgrader.converters.autograde  # noqa: F401

import portbinding.grading.execute  # noqa: F401

# nbformat builds its validator (and jsonschema its format checkers) on first use: do it here.
nbformat.validate(nbformat.v4.new_notebook())  # type: ignore[no-untyped-call]
