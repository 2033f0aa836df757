"""Warm workers: a fork server that has imported every verb's libraries, so a local job starts at once.

A cold `growup` verb spends most of a mini-study job importing torch, transformers, lm-eval or
mergekit (about 5 s on two cores) before a second of work. For one local Snakemake run the
workflow starts `growup.warm.server`: one single-threaded process that imports every verb's
modules, computes nothing (no torch op, no CUDA, no OpenMP region), and forks one worker per job.
The `growup` command is the client (`growup.warm.client`): it sends its argv, working folder,
environment, umask and its stdin/stdout/stderr (as file descriptors) over a private Unix socket,
forwards signals to the worker, and exits with the worker's status. Whenever the server could
differ from a fresh process (another interpreter, path, growup source file or import-time
environment variable: `growup.warm.protocol.fingerprint`), or cannot be reached, the client runs
the verb in-process instead, with the same result. `GROWUP_WARM=0` turns it off.
"""
