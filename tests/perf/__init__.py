"""Benchmarks (run with scripts/bench, apart from the test suite): speed and memory of the client
and the hub, each against its natural floor where it has one."""
