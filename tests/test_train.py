"""Training on the mini data: learning, the logged schedule, determinism, resume after SIGKILL and
SIGTERM, zero-step runs, and gradient accumulation."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from growup.config import Study
from growup.models.build import base_config, init_model
from growup.models.checkpoint import read_card, save_checkpoint
from growup.models.cloning import hyperclone
from growup.train.loop import PREEMPTED, train
from growup.train.schedule import wsd_lr
from helpers import tiny_raw

GROWUP = str(Path(sys.executable).parent / "growup")


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def init(mini_data, tmp_path_factory) -> Path:
    study = Study.from_mapping(tiny_raw())
    out = tmp_path_factory.mktemp("init") / "init"
    save_checkpoint(
        init_model(base_config(study.model, 2048), seed=0),
        out,
        {"operation": "init", "tokens": 0},
        tokenizer_src=mini_data / "tokenizer",
    )
    return out


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def english_run(mini_data, init, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "english-1x"
    train(Study.from_mapping(tiny_raw()), "english-1x", init, out, data_dir=mini_data, progress=False)
    return out


def test_loss_goes_down_and_lr_follows_schedule(english_run):
    rows = metrics(english_run)
    study = Study.from_mapping(tiny_raw())
    sched = study.training.schedules["english"]
    assert [r["step"] for r in rows] == list(range(1, 31))
    # only what the run computed: no wall-clock figure, so the file is the same bytes on any machine
    assert {k for r in rows for k in r} == {"step", "loss", "lr", "grad_norm", "tokens", "flops", "flops_6n"}
    assert [r["lr"] for r in rows] == [wsd_lr(r["step"], sched, 3e-3) for r in rows]
    first, last = rows[0]["loss"], sum(r["loss"] for r in rows[-5:]) / 5
    assert last < first - 0.5, (first, last)
    assert rows[-1]["tokens"] == 30 * 4 * 256
    assert rows[-1]["flops"] > rows[-1]["flops_6n"] > 0


def test_checkpoints_and_card(english_run, init):
    assert sorted(p.name for p in english_run.iterdir() if p.name.startswith("step-")) == [
        "step-10",
        "step-20",
        "step-30",
    ]
    assert same_weights(english_run / "step-30", english_run / "final")
    card = read_card(english_run / "final")
    assert card["run"] == "english-1x" and card["step"] == 30 and card["parent"] == str(init)
    assert card["tokens"] == 30 * 4 * 256 and card["flops"] > 0
    assert (english_run / "final" / "tokenizer.json").is_file()


def test_two_runs_are_bit_identical(english_run, mini_data, init, tmp_path):
    train(
        Study.from_mapping(tiny_raw()),
        "english-1x",
        init,
        tmp_path / "again",
        data_dir=mini_data,
        progress=False,
    )
    assert same_weights(english_run / "final", tmp_path / "again" / "final")


def test_gradient_accumulation_matches_a_big_batch(mini_data, init, tmp_path):
    one_step = {
        "schedules": {
            **tiny_raw()["training"]["schedules"],
            "english": {"steps": 1, "warmup": 1, "decay_start": 1, "decay_steps": 0},
        }
    }
    # eps = 1 makes Adam's first update lr·g/(|g|+1) ≈ lr·g, linear in the gradient, so equal
    # updates mean equal gradients (with the study's eps the update is ≈ lr·sign(g), which turns
    # fp32 rounding of gradients near zero into differences of order lr).
    linear = {"eps": 1.0, "grad_clip": None, **one_step}
    big = Study.from_mapping(tiny_raw(global_batch=8, micro_batch=8, **linear))
    acc = Study.from_mapping(tiny_raw(global_batch=8, micro_batch=2, **linear))
    train(big, "english-1x", init, tmp_path / "big", data_dir=mini_data, progress=False)
    train(acc, "english-1x", init, tmp_path / "acc", data_dir=mini_data, progress=False)
    assert metrics(tmp_path / "big")[0]["loss"] == pytest.approx(
        metrics(tmp_path / "acc")[0]["loss"], rel=1e-6
    )
    wa, wb, w0 = weights(tmp_path / "big" / "final"), weights(tmp_path / "acc" / "final"), weights(init)
    for k in wa:
        assert not torch.equal(wa[k], w0[k])
        # the updates agree to a few fp32 ulps of the weights they were added to
        torch.testing.assert_close(wa[k] - w0[k], wb[k] - w0[k], rtol=1e-3, atol=1e-8)


def test_zero_steps_returns_the_clone_unchanged(mini_data, init, tmp_path):
    from transformers import AutoModelForCausalLM

    clone = hyperclone(AutoModelForCausalLM.from_pretrained(init), 2)
    save_checkpoint(clone, tmp_path / "clone", {"operation": "hyperclone x2"}, tokenizer_src=init)
    raw = tiny_raw()
    raw["training"]["schedules"]["english"] = {"steps": 0, "warmup": 0, "decay_start": 0, "decay_steps": 0}
    train(
        Study.from_mapping(raw),
        "english-2x",
        tmp_path / "clone",
        tmp_path / "run",
        data_dir=mini_data,
        progress=False,
    )
    assert same_weights(tmp_path / "clone", tmp_path / "run" / "final")
    assert json.loads((tmp_path / "run" / "final" / "config.json").read_text())["model_type"] == "hyperllama"


LONG = 60  # steps: a kill at step 10 or 20 leaves most of the run to resume


def _long_config(tmp_path: Path) -> Path:
    raw = tiny_raw(state_every=5)
    raw["training"]["schedules"]["english"] = {
        "steps": LONG,
        "warmup": 5,
        "decay_start": 48,
        "decay_steps": 12,
    }
    raw["training"]["checkpoint_every"] = {"base": 20, "adaptation": 20}
    return write_config(tmp_path / "long.yaml", raw)


def _start(config: Path, init: Path, out: Path, data: Path, work: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            GROWUP,
            "train",
            "--configfile",
            str(config),
            "--run",
            "english-1x",
            "--init",
            str(init),
            "--out",
            str(out),
            "--data-dir",
            str(data),
            *(["--work", str(work)] if work else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_state(out: Path, proc: subprocess.Popen, at_least: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    step_file = out / "state" / "step.json"
    while time.monotonic() < deadline:
        if step_file.is_file() and json.loads(step_file.read_text())["step"] >= at_least:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before step {at_least}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    pytest.fail("no state written in time")


MARK = "written before the interruption"


def mark_trained_steps(out: Path) -> int:
    """Tag the metric lines of the steps the saved state holds; return its step. A resumed run
    keeps those lines as they are and appends the rest; a run that started again from step 0
    would write every line anew, without the tag."""
    saved = json.loads((out / "state" / "step.json").read_text())["step"]
    rows = [{**r, "mark": MARK} if r["step"] <= saved else r for r in metrics(out)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return saved


def assert_resumed_at(rerun: subprocess.Popen, out: Path, saved: int) -> None:
    """The rerun said it resumed from the saved step and trained only the steps after it."""
    log = rerun.stderr.read()
    assert f"resuming english-1x from step {saved}" in log, log[-2000:]
    rows = metrics(out)
    assert [r["step"] for r in rows if r.get("mark") == MARK] == list(range(1, saved + 1))
    assert all("mark" not in r for r in rows[saved:])
    for r in rows:
        r.pop("mark", None)
    (out / "metrics.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


@pytest.fixture(scope="module")
def uninterrupted(mini_data, init, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("long")
    config = _long_config(tmp)
    proc = _start(config, init, tmp / "run", mini_data)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]
    return config, tmp / "run"


def test_sigkill_then_rerun_matches_uninterrupted(uninterrupted, mini_data, init, tmp_path):
    config, reference = uninterrupted
    out = tmp_path / "run"
    proc = _start(config, init, out, mini_data)
    _wait_for_state(out, proc, at_least=20)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "final").exists()
    saved = mark_trained_steps(out)
    rerun = _start(config, init, out, mini_data)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()[-2000:]
    assert_resumed_at(rerun, out, saved)
    assert same_weights(out / "final", reference / "final")
    assert [r["step"] for r in metrics(out)] == list(range(1, LONG + 1))
    assert [r["loss"] for r in metrics(out)] == [r["loss"] for r in metrics(reference)]


def test_sigterm_saves_a_resumable_state(uninterrupted, mini_data, init, tmp_path):
    config, reference = uninterrupted
    out = tmp_path / "run"
    proc = _start(config, init, out, mini_data)
    _wait_for_state(out, proc, at_least=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143  # the README's promise: 128 + SIGTERM
    assert PREEMPTED == 143
    saved = json.loads((out / "state" / "step.json").read_text())["step"]
    assert saved == metrics(out)[-1]["step"] and saved < LONG
    assert mark_trained_steps(out) == saved
    rerun = _start(config, init, out, mini_data)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()[-2000:]
    assert_resumed_at(rerun, out, saved)
    assert same_weights(out / "final", reference / "final")


def test_a_work_folder_left_by_another_spec_is_cleared_not_resumed(uninterrupted, mini_data, init, tmp_path):
    """The workflow trains in a work folder (--work): a rerun with the same spec resumes it, one
    with another spec (a changed value) clears it and starts afresh (README, "Dependency tracking")."""
    import shutil

    from growup.study import resolve_spec

    config, reference = uninterrupted
    work = tmp_path / "work"
    proc = _start(config, init, tmp_path / "out", mini_data, work=work)
    _wait_for_state(work, proc, at_least=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143 and not (tmp_path / "out").exists()
    stale = tmp_path / "stale"
    shutil.copytree(work, stale)
    other = yaml.safe_load(config.read_text())
    other["training"]["peak_lr"] = 1e-3  # the state in `stale` was trained at another learning rate
    other_spec = resolve_spec(None, write_config(tmp_path / "other.yaml", other), "train", run="english-1x")
    (stale / "spec.json").write_text(json.dumps(other_spec, sort_keys=True))

    saved = mark_trained_steps(work)
    same = _start(config, init, tmp_path / "out", mini_data, work=work)
    assert same.wait(timeout=600) == 0
    assert_resumed_at(same, tmp_path / "out", saved)
    assert not work.exists() and same_weights(tmp_path / "out" / "final", reference / "final")

    mark_trained_steps(stale)
    fresh = _start(config, init, tmp_path / "fresh", mini_data, work=stale)
    assert fresh.wait(timeout=600) == 0
    log = fresh.stderr.read()
    assert "was left by a run with another spec: starting afresh" in log, log[-2000:]
    assert "resuming" not in log, log[-2000:]
    assert not stale.exists()
    assert all("mark" not in r for r in metrics(tmp_path / "fresh"))
    assert [r["loss"] for r in metrics(tmp_path / "fresh")] == [r["loss"] for r in metrics(reference)]
    assert same_weights(tmp_path / "fresh" / "final", reference / "final")


def test_batch_must_divide(mini_data, init, tmp_path):
    from growup.errors import GrowupError

    with pytest.raises(GrowupError, match="training.global_batch"):
        train(
            Study.from_mapping(tiny_raw(global_batch=6, micro_batch=4)),
            "english-1x",
            init,
            tmp_path / "x",
            data_dir=mini_data,
            progress=False,
        )


def test_unknown_run_lists_the_valid_ones(mini_data, init, tmp_path):
    from growup.errors import GrowupError

    with pytest.raises(GrowupError, match=r"unknown run 'klingon-1x'.*'ekk-1x'"):
        train(Study.from_mapping(tiny_raw()), "klingon-1x", init, tmp_path / "x", data_dir=mini_data)


def test_language_and_multilingual_runs_read_their_mixture(mini_data):
    from growup.train.mixture import Mixture
    from growup.train.runs import run_spec

    study = Study.from_mapping(tiny_raw())
    budgets = json.loads((mini_data / "unimax.json").read_text())
    spec = run_spec(study, "fao-2x", mini_data)
    assert [p.seed for p in spec.phases] == [s["seed"] for s in budgets["languages"]["fao"]["stages"]]
    assert spec.datasets == ["fao", "replay-fao"]
    from growup.data.packing import PackedDataset

    packs = {n: PackedDataset.open(mini_data / "packed" / n) for n in spec.datasets}
    counts = Mixture(spec.phases, packs).counts()
    epochs = budgets["languages"]["fao"]["epochs"]
    assert abs(counts["fao"] - epochs * len(packs["fao"])) <= len(spec.phases)
    multi = run_spec(study, "multilingual-1x", mini_data)
    assert set(multi.datasets) == {*study.data.language_codes, *study.data.replay_datasets}
    seed = run_spec(study, "seed", mini_data)
    assert [sorted(p.dataset for p in ph.portions) for ph in seed.phases] == [
        ["code"],
        ["code"],
        ["code", "english-80"],
    ]
