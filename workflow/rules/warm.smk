# Warm workers (growup.warm): for a local run, one server imports every verb's libraries once and
# each local job forks from it (about 5 s less per job on two cores); the `growup` command runs a
# verb in-process whenever the server is missing, not ready yet, stale or different from it, so
# results are the same either way. Never for jobs that run elsewhere: a cluster executor's jobs
# (each does its work in its own allocation), remote or subprocess execution, or jobs in a
# container or conda environment. GROWUP_WARM=0 turns it off; GROWUP_WARM=1 uses it even for a
# run of fewer than WARM_MIN_JOBS jobs (the tests do, to run the warm path).

from growup.warm import server as warm

WARM = {}
# fewer jobs to run than this: the server's imports (every verb's libraries, several CPU seconds)
# would cost more than they save
WARM_MIN_JOBS = 4


def warm_wanted():
    """Local jobs on this machine, in this environment, enough of them, and not switched off."""
    switch = os.environ.get(warm.SWITCH_ENV, "")
    return (
        switch != "0"
        and (switch == "1" or len(workflow.dag) >= WARM_MIN_JOBS)
        and workflow.local_exec
        and not workflow.remote_exec
        and not workflow.subprocess_exec
        and not workflow.touch
        and not workflow.deployment_settings.deployment_method
    )


def start_warm():
    """The warm server, when wanted (called by the one onstart handler, in common.smk)."""
    if warm_wanted():
        WARM["server"] = warm.start("logs/warm.log")
        if WARM["server"] is not None:
            os.environ[warm.SOCKET_ENV] = WARM["server"].socket  # local jobs inherit it


onsuccess:
    os.environ.pop(warm.SOCKET_ENV, None)
    warm.stop(WARM.pop("server", None))


onerror:
    os.environ.pop(warm.SOCKET_ENV, None)
    warm.stop(WARM.pop("server", None))
