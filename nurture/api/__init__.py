"""The HTTP API (FastAPI): ``nurture api``, and part of ``nurture dev``."""
