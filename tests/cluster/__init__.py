"""The SLURM test cluster (minicluster.py: config templates, start and stop) and helpers to watch
and interrupt its jobs (watch.py). The suite's cluster tests are tests/test_cluster.py."""
