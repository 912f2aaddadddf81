# Makes the repository root importable for tests and benchmarks (engine, ui).
