"""Reusable test suites that every implementation of a contract subclasses."""
