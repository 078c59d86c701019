"""The ``modelrunner`` command line."""
