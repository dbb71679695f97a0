"""The one exception type of the integer reference simulator."""


class SimError(Exception):
    """A graph intsim refuses, or a value outside its datatype; the message names the node."""
