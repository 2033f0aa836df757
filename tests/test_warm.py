"""The warm fork server (growup.warm), with real processes: a verb gives the same bytes and status
warm and cold, a worker takes its client's process state, SIGTERM is forwarded (143, or death by
the signal), a killed client has its worker killed, and a stale fingerprint, GROWUP_WARM=0, a
missing server or a server whose imports left a thread running all mean the verb runs cold."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from growup.warm import protocol
from growup.warm import server as warm

TESTS = Path(__file__).resolve().parent
GROWUP = str(Path(sys.executable).parent / "growup")
# a client of the stand-in verb: the real entry point with the test target
CLIENT = [
    sys.executable,
    "-c",
    "import sys; from growup.warm.client import main; sys.exit(main('warm_target:main'))",
]


def base_env(*paths: Path) -> dict[str, str]:
    """The tests' environment: the stand-in verb importable, every thread count 1, no server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GROWUP_WARM")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*map(str, paths), str(TESTS), env.get("PYTHONPATH")]))
    return warm.job_environment(env)


def launch(
    tmp: Path, env: dict[str, str], preload: list[str], target: str, serving: bool = True
) -> warm.Launched:
    launched = warm.start(tmp / "warm.log", preload=preload, target=target, environ=env)
    assert launched is not None
    assert warm.wait_serving(launched) == serving, (tmp / "warm.log").read_text()
    return launched


@pytest.fixture(scope="module")
def target_server(tmp_path_factory):
    """A server of the stand-in verb that has imported torch and threadpoolctl, as the real one has."""
    tmp = tmp_path_factory.mktemp("warm")
    env = base_env()
    launched = launch(tmp, env, ["warm_target", "threadpoolctl", "torch"], "warm_target:main")
    yield {**env, protocol.SOCKET_ENV: launched.socket}
    warm.stop(launched)


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    """A server of the real `growup` command that has imported the artifact verbs."""
    tmp = tmp_path_factory.mktemp("warm-cli")
    env = base_env()
    launched = launch(tmp, env, ["growup.cli", "growup.artifacts"], protocol.TARGET)
    yield {**env, protocol.SOCKET_ENV: launched.socket}
    warm.stop(launched)


def cold(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k != protocol.SOCKET_ENV}


def run(command: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, **kw)


def warm_usage(proc: subprocess.CompletedProcess) -> dict | None:
    return protocol.parse_usage(proc.stderr)


def without_usage(text: str) -> str:
    """stderr without the warm usage line and log timestamps."""
    lines = (line for line in text.splitlines(True) if not line.startswith(protocol.USAGE))
    return "".join(re.sub(r"^\d{4}-\d\d-\d\d [\d:,]+ ", "", line) for line in lines)


def pid_run(env: dict[str, str], **kw) -> tuple[int, int]:
    """(client pid, pid that ran the verb)."""
    proc = subprocess.Popen([*CLIENT, "pid"], env=env, stdout=subprocess.PIPE, text=True, **kw)
    out, _ = proc.communicate(timeout=120)
    return proc.pid, int(out.split()[0])


def small_repo(root: Path) -> Path:
    (root / "out").mkdir(parents=True)
    (root / "dvc.yaml").write_text("stages:\n  build:\n    cmd: make\n    outs:\n      - out\n")
    (root / "out" / "a.txt").write_text("alpha\n")
    (root / "out" / "b.txt").write_text("beta\n")
    return root


def test_a_verb_gives_the_same_bytes_and_status_warm_and_cold(cli_server, tmp_path):
    repos = {"warm": small_repo(tmp_path / "warm"), "cold": small_repo(tmp_path / "cold")}
    steps = [
        ["artifacts", "record"],
        ["artifacts", "verify"],
        "edit",
        ["artifacts", "verify"],  # a differing file: the report and exit 2
        ["artifacts", "verify", "--manifest", "missing.json"],  # one error line, exit 2
        ["--help"],
        ["no-such-verb"],  # argparse: usage on stderr, exit 2
    ]
    statuses = []
    for step in steps:
        if step == "edit":
            for repo in repos.values():
                (repo / "out" / "a.txt").write_text("ALPHA\n")
            continue
        warm_run = run([GROWUP, *step], cli_server, cwd=repos["warm"])
        cold_run = run([GROWUP, *step], cold(cli_server), cwd=repos["cold"])
        assert warm_usage(warm_run) is not None, warm_run.stderr  # a worker ran it
        assert warm_usage(cold_run) is None
        assert (warm_run.returncode, warm_run.stdout) == (cold_run.returncode, cold_run.stdout), step
        assert without_usage(warm_run.stderr) == without_usage(cold_run.stderr), step
        statuses.append(warm_run.returncode)
    assert statuses == [0, 0, 2, 2, 0, 2]
    manifests = [(repo / "artifacts.json").read_bytes() for repo in repos.values()]
    assert manifests[0] == manifests[1]


def test_a_worker_takes_its_clients_process_state(target_server, tmp_path):
    def umask_027() -> None:
        os.umask(0o027)

    outputs = []
    for env in (target_server, cold(target_server)):
        env = {**env, "WARM_TEST_VALUE": "from the job"}
        proc = subprocess.run(
            [*CLIENT, "state", "more"],
            env=env,
            input="on stdin",
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=umask_027,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append((json.loads(proc.stdout), without_usage(proc.stderr)))
    assert outputs[0] == outputs[1]
    state, stderr = outputs[0]
    assert state["cwd"] == str(tmp_path) and state["stdin"] == "on stdin" and state["umask"] == 0o027
    assert state["env"] == "from the job" and state["argv"] == ["-c", "state", "more"]
    assert stderr == "to stderr\n"


@pytest.mark.parametrize(
    "args,status,stderr",
    [(["exit", "0"], 0, ""), (["exit", "3"], 3, ""), (["raise"], 1, "RuntimeError: a bug")],
)
def test_exit_statuses_are_the_same_warm_and_cold(target_server, args, status, stderr):
    for env in (target_server, cold(target_server)):
        proc = run([*CLIENT, *args], env)
        assert proc.returncode == status and stderr in proc.stderr
    assert warm_usage(run([*CLIENT, *args], target_server))["pid"] > 0


def wait_ready(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    return line.strip()


@pytest.mark.parametrize("mode,status", [("term", 143), ("sleep", -signal.SIGTERM)])
def test_sigterm_is_forwarded_to_the_worker(target_server, mode, status):
    """Training saves and exits 143 on SIGTERM; a verb that does not handle it dies by it. Either
    way the client ends as a cold process would."""
    for env in (target_server, cold(target_server)):
        proc = subprocess.Popen(
            [*CLIENT, mode], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert wait_ready(proc) == "ready"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == status
        proc.stdout.close()
        proc.stderr.close()


def alive(pid: int) -> bool:
    """Running (a zombie waiting for the server to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_a_killed_client_has_its_worker_killed_at_once(target_server, tmp_path):
    out = tmp_path / "counter.txt"
    proc = subprocess.Popen(
        [*CLIENT, "write", str(out)], env=target_server, stdout=subprocess.PIPE, text=True
    )
    worker = int(wait_ready(proc))
    assert worker != proc.pid and alive(worker)
    time.sleep(0.1)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(worker)
    size = out.stat().st_size
    time.sleep(0.3)
    assert out.stat().st_size == size  # nothing writes after the job is gone
    proc.stdout.close()


def test_the_worker_has_the_jobs_thread_count(target_server):
    """The server imported torch with one thread; a job of two gets two, as a fresh process would."""
    two = {name: "2" for name in protocol.THREAD_VARS}
    outputs = []
    for env in (target_server, cold(target_server)):
        proc = run([*CLIENT, "threads"], {**env, **two})
        assert proc.returncode == 0, proc.stderr
        outputs.append(json.loads(proc.stdout))
    assert outputs[0] == outputs[1]
    assert outputs[0]["torch"] == 2 and {n for _, n in outputs[0]["libraries"]} == {2}


def test_a_stale_or_switched_off_server_is_not_used(target_server):
    client, ran = pid_run(target_server)
    assert ran != client  # served
    stale = [
        {"HF_HUB_OFFLINE": "0" if target_server.get("HF_HUB_OFFLINE") == "1" else "1"},  # read at import
        {"TRANSFORMERS_VERBOSITY": "error"},
        {"PYTHONPATH": target_server["PYTHONPATH"] + os.pathsep + "/nonexistent"},
        {"OMP_NUM_THREADS": "2"},  # OpenBLAS and MKL still 1: no one count to apply
        {protocol.SWITCH_ENV: "0"},
        {protocol.SOCKET_ENV: target_server[protocol.SOCKET_ENV] + ".missing"},
    ]
    for change in stale:
        client, ran = pid_run({**target_server, **change})
        assert ran == client, change  # ran in the client's own process


def test_the_fingerprint_covers_every_growup_source_file(tmp_path):
    package = tmp_path / "growup"
    shutil.copytree(protocol.PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = protocol.source_digest(package)
    schema = package / "schemas" / "config.schema.yaml"
    schema.write_text(schema.read_text() + "\n")
    assert protocol.source_digest(package) != before
    env = dict(os.environ)
    assert protocol.fingerprint(env, sources=before) == protocol.fingerprint(env, sources=before)
    assert protocol.fingerprint(env, sources=before) != protocol.fingerprint(env, sources=before + "x")
    assert protocol.fingerprint(env) != protocol.fingerprint({**env, "HF_HOME": "/elsewhere"})
    assert protocol.fingerprint(env) == protocol.fingerprint({**env, "OMP_NUM_THREADS": "7", "_": "x"})


def test_a_server_whose_imports_leave_a_thread_running_serves_nobody(tmp_path):
    (tmp_path / "warm_threaded.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
    )
    env = base_env(tmp_path)
    launched = launch(tmp_path, env, ["warm_target", "warm_threaded"], "warm_target:main", serving=False)
    try:
        assert launched.process.wait(timeout=60) == 3
        assert "not serving" in (tmp_path / "warm.log").read_text()
        client, ran = pid_run({**env, protocol.SOCKET_ENV: launched.socket})
        assert ran == client
    finally:
        warm.stop(launched)


def test_a_server_serves_jobs_that_write_into_a_folder_on_the_import_path(tmp_path):
    """A job's folder may be on the import path (an empty PYTHONPATH entry): the files jobs write
    there do not make the server stale; a changed environment does, and its log names it."""
    env = base_env(tmp_path)
    launched = launch(tmp_path, env, ["warm_target"], "warm_target:main")
    served = {**env, protocol.SOCKET_ENV: launched.socket}
    try:
        (tmp_path / "a job's output").mkdir()
        client, ran = pid_run(served, cwd=tmp_path)
        assert ran != client
        client, ran = pid_run({**served, "TRANSFORMERS_VERBOSITY": "error"}, cwd=tmp_path)
        assert ran == client
    finally:
        warm.stop(launched)
    assert (
        "stale: the client differs from the server in environment variables TRANSFORMERS_VERBOSITY"
        in (tmp_path / "warm.log").read_text()
    )


def test_a_job_that_starts_while_the_server_imports_runs_cold_at_once(tmp_path):
    (tmp_path / "warm_slow.py").write_text("import time\ntime.sleep(30)\n")
    env = base_env(tmp_path)
    launched = warm.start(
        tmp_path / "warm.log", preload=["warm_slow"], target="warm_target:main", environ=env
    )
    assert launched is not None
    try:
        began = time.monotonic()
        client, ran = pid_run({**env, protocol.SOCKET_ENV: launched.socket})
        assert ran == client and time.monotonic() - began < 25
        assert launched.process.poll() is None  # still importing
    finally:
        began = time.monotonic()
        warm.stop(launched)
    assert time.monotonic() - began < 5  # SIGTERM ends an importing server at once
