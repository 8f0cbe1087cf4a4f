"""Speed and memory measurements of the project on this machine: `python -m benchmarks.run`."""
