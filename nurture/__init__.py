"""Nurture: HubSpot-style sales sequences and marketing workflows as durable Temporal workflows.

The core package holds what every role shares: settings, the record store, definition models,
scheduling and templating rules, and the typed messages that cross the Temporal boundary.
Roles live beside it: ``workflows/`` (deterministic code only), ``activities/`` (all I/O),
``workers/`` (processes that run them) and ``starters/`` (the client side).
"""

__version__ = "0.1.0"
