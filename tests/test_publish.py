"""Publishing a study over plain HTTP: the suite's built study pushed to a folder remote, that folder
served read-only as a static tree by a real HTTP server on 127.0.0.1, and a fresh clone that pulls
only the evaluations and tables (no checkpoint), restores the build order and plans exactly one
figure job. README "Publishing artifacts"."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import planned, run_tool


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """A static file server (GET and HEAD only: read-only) that counts the bytes of each body."""

    sent: list[int]

    def copyfile(self, source, outputfile) -> None:
        data = source.read()
        outputfile.write(data)
        self.sent.append(len(data))

    def log_message(self, *args) -> None:  # quiet: the test reads the counts
        pass


@pytest.fixture(scope="module")
def served_store(study_repo: Path) -> Iterator[tuple[str, Path, list[int]]]:
    """The study's default remote (a folder beside it) after `dvc push`, served over HTTP."""
    run_tool(study_repo, "dvc", "push")
    if run_tool(study_repo, "git", "status", "--porcelain", "dvc.lock", "artifacts.json").strip():
        run_tool(study_repo, "git", "add", "dvc.lock", "artifacts.json")
        run_tool(study_repo, "git", "commit", "-q", "-m", "study artifacts")
    store = study_repo.parent / "growup-dvc-store"
    sent: list[int] = []
    handler = functools.partial(type("Handler", (CountingHandler,), {"sent": sent}), directory=str(store))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store, sent
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def pulled(served_store, study_repo, tmp_path_factory) -> tuple[Path, int, int, str]:
    """A fresh clone that pulled the evaluations and tables over HTTP, then restored: the clone,
    bytes the server sent, bytes the remote holds, and what the restore said."""
    url, store, sent = served_store
    clone = tmp_path_factory.mktemp("published") / "clone"
    run_tool(clone.parent, "git", "clone", "-q", str(study_repo), str(clone))
    run_tool(clone, "dvc", "remote", "add", "--local", "--default", "web", url)
    run_tool(clone, "dvc", "pull", "evals", "results/tables")
    remote_bytes = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
    print(f"pulled {sum(sent):,} of the remote's {remote_bytes:,} bytes ({sum(sent) / remote_bytes:.1%})")
    return clone, sum(sent), remote_bytes, run_tool(clone, "growup", "artifacts", "restore")


@pytest.mark.slow
def test_a_clone_pulls_evaluations_over_http_and_plans_exactly_one_figure(pulled):
    clone, sent, remote_bytes, restored = pulled
    assert 0 < sent < remote_bytes / 10
    assert not (clone / "checkpoints").exists() and not (clone / "merges").exists()
    assert " 0 marked stale" in restored, restored
    dry = run_tool(clone, "snakemake", "-n", "results/figures/merge_heatmaps.pdf")
    assert planned(dry) == {"figure": 1, "total": 1}, dry
    assert "wildcards: figure=merge_heatmaps" in dry


@pytest.mark.slow
def test_a_pulled_checkout_records_provenance_once_then_an_edit_reruns_its_jobs(pulled):
    """README: a pulled checkout has no Snakemake metadata, so an edited value reruns nothing
    until `snakemake --touch --forceall` records it; then exactly the jobs that read it rerun."""
    clone = pulled[0]
    target, edit = "results/tables/final_scores.md", ("--config", "report={bootstrap_seed: 1}")
    before = run_tool(clone, "snakemake", "-n", target, *edit)
    assert "missing provenance/metadata" in before and "Nothing to be done" in before  # the gap
    run_tool(clone, "snakemake", "--touch", "--forceall", "--cores", "1", target)
    assert not (clone / "checkpoints").exists()  # touching writes no missing output
    assert "missing provenance" not in run_tool(clone, "snakemake", "-n", target)
    assert planned(run_tool(clone, "snakemake", "-n", target, *edit)) == {"tidy": 1, "tables": 1, "total": 2}
