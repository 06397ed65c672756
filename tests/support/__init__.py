"""Helpers shared by tests of several services (importable as ``tests.support``)."""
