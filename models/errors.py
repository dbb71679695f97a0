"""The one exception type of the Brevitas side (flow re-exports its own)."""


class ModelError(Exception):
    """A problem with a model name, a checkpoint or the data, with its fix in the message."""
