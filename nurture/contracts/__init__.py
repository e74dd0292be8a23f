"""Typed messages that cross the Temporal boundary: workflow inputs, signals, queries and
activity inputs/results. Pydantic models, serialized by ``pydantic_data_converter``.

They carry IDs, never secrets, and no personal data beyond what a step needs.
"""
