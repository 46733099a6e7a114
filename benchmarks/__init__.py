"""Benchmarks on full-size stand-ins (random weights, real architectures); not part of the test
run."""
