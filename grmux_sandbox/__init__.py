"""Sandbox: emulated GIR services and synthetic media for the demo, tests and benchmarks."""
