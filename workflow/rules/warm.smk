# Warm workers (growup.warm): for a local run, one server imports every verb's libraries once and
# each local job forks from it (about 5 s less per job on two cores); the `growup` command runs a
# verb in-process whenever the server is missing, stale or different from it, so results are the
# same either way. Never for jobs that run elsewhere: a cluster executor's jobs (each does its work
# in its own allocation), remote or subprocess execution, or jobs in a container or conda
# environment. GROWUP_WARM=0 turns it off.

from growup.warm import server as warm

WARM = {}


def warm_wanted():
    """Local jobs on this machine, in this environment, and not switched off."""
    return (
        os.environ.get(warm.SWITCH_ENV, "1") != "0"
        and workflow.local_exec
        and not workflow.remote_exec
        and not workflow.subprocess_exec
        and not workflow.touch
        and not workflow.deployment_settings.deployment_method
    )


onstart:
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
