"""The errors ganlib raises on purpose. Each message names what is wrong and what to do."""


class GanlibError(Exception):
    """Base class: an error meant for the person running the notebook, not a bug."""


class DataError(GanlibError):
    """A dataset is missing, empty, unreadable or in the wrong layout."""


class NonFiniteLossError(GanlibError):
    """A loss became NaN or infinite; training stopped and the last good checkpoint stays."""
