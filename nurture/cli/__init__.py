"""The ``nurture`` command line."""
