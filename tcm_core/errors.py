"""The one error type for problems a user can cause (bad files, shapes, ranges, paths).

The CLI prints its message and exits 2; the app shows it with ``st.error``. Anything else
that escapes is a bug in TCM Explorer, not in the user's input.
"""


class TCMError(ValueError):
    """Invalid input or configuration; the message says what is wrong and what to do."""
