"""The one exception type users see.

Anything raised as `AnnopipeError` is a user mistake or an environment problem that the user
can fix: the CLI prints its message as one line and exits non-zero, without a traceback.
Everything else is a bug and keeps its traceback.
"""


class AnnopipeError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
