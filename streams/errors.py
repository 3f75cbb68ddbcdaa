"""The root of parcelflow's own errors: what the user or the data got wrong, said in one line.

Every error class of the project derives from :class:`ParcelflowError`, so the command line can
turn exactly these into one ``error:`` line and exit status 1, while anything else (a bug: a
``ValueError``, ``KeyError`` or ``TypeError`` from our own code) keeps its traceback. Where a
library or the standard library raises ``ValueError`` for bad input (``int("x")``,
``datetime.fromisoformat``), the code calling it converts that into the ParcelflowError of its
concern.
"""

from __future__ import annotations


class ParcelflowError(Exception):
    """An error the user (or the data) can act on: its message is one line that says what and where."""
