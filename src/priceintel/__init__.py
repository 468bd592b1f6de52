"""Price-intelligence workbench: collect, match, store, model and act on competitor prices."""

__version__ = "0.1.0"


class PriceIntelError(Exception):
    """Base class for errors that carry a clear, user-facing message (no traceback needed)."""
