"""Benchmarks that time gradflow against PyTorch on the same models, batches and optimizer in
one process (`python -m benchmarks.train_step`); see benchmarks/RESULTS.md."""
