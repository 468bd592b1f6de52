"""Coverage's tracer off for a block (the end-to-end tests, the session's pipeline run)."""

import contextlib


@contextlib.contextmanager
def untraced():
    """Run the block with coverage's tracer off (a no-op when coverage is not measuring)."""
    import coverage

    cov = coverage.Coverage.current()
    if cov is None:
        yield
        return
    cov.stop()
    try:
        yield
    finally:
        cov.start()
