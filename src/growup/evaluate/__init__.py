"""Evaluation: minimal-pair benchmarks through lm-eval, tidy result rows, checkpoint sweeps."""
