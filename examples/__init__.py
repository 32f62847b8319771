"""Runnable examples, one per pattern (``uv run --frozen python -m examples.<name>``).

Each module exposes its pattern as functions that take a store, so the integration
tests (``tests/integration/test_patterns_*.py``) run exactly the code shown here.
"""
