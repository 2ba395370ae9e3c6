"""Test doubles: fake upstream backends for tests and benchmarks."""
