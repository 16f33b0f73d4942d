"""The echo-server conformance suite: the scenario families (test_*.py), their harness, the pytest
plugin and the ``echo-conformance`` command.

PYTEST_DONT_REWRITE: imported by the command before pytest starts.
"""
