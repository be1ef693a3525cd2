"""mailbench: the benchmark runner of issue #7 (``benchmarks/run`` starts it)."""
