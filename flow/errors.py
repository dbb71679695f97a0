"""The one exception type of the flow; the CLI prints its message as one line."""


class FlowError(Exception):
    """A problem the user can fix; the message names it and the fix."""
