"""Built-in echo implementations and the table that lists them.

PYTEST_DONT_REWRITE: the table is imported by echo-conformance before pytest starts.
"""
