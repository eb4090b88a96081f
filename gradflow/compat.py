"""What gradflow needs from Python versions newer than its oldest (3.10)."""
from __future__ import annotations

import sys


def add_note(err: BaseException, note: str) -> None:
    """`err.add_note(note)` (Python 3.11+); on 3.10 the note still lands in `err.__notes__`,
    where the tests and callers read it, though 3.10's traceback does not print it."""
    if sys.version_info >= (3, 11):
        err.add_note(note)
    else:
        # 3.10's BaseException declares no __notes__; any exception object takes the attribute
        setattr(err, "__notes__", [*getattr(err, "__notes__", []), note])
