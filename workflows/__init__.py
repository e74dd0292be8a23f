"""Workflow code: deterministic only. No I/O, no wall clock, no randomness, no threads.

Time comes from ``workflow.now()``; every side effect and every computation that depends on data
that can change between releases (time zones, holidays) runs in an activity, called by name.
"""
