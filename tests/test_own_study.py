"""Your own study from config alone: a sixth language growup has never seen (a test-local copy of
the mirror with one more FineWeb-2 subset and MultiBLiMP code) trained in all three setups from a
fetched English base, and merged with fetched language models. One build shows both: English
runs fetched from a (test-local) Hub, language runs fetched from another study's folders, the
English clone made from the fetched english-1x, and no seed or English run trained.

The stand-ins are the suite's built mini study (`study_repo`): its English checkpoints written into
a Hub root (as tests/test_released.py writes released ones), its language runs read from its folders.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from growup.config import resolve_config
from growup.models.checkpoint import read_card
from helpers import copy_repo, git_repo, linked_hub, planned, planned_resources, run_tool

NEW = "dan"  # the new language's key, FineWeb-2 subset and MultiBLiMP code below
SUBSET, CODE = "dan_Latn", "dan"
STAND_IN_TEXT = "fao_Latn"  # no Danish text offline: Faroese documents under the new subset's name
ORG = "growup-standin"


def mirror_with_a_new_language(mirror: Path, root: Path) -> None:
    """A Hub root like the mirror (links, no copies) plus FineWeb-2 `dan_Latn` and MultiBLiMP `dan`,
    each declared in its dataset card as the Hub's cards declare their subsets."""
    linked_hub(mirror, root, skip=("HuggingFaceFW", "jumelet"))
    for repo, folder, new, source in (
        ("HuggingFaceFW/fineweb-2", "data", f"data/{SUBSET}", f"data/{STAND_IN_TEXT}"),
        ("jumelet/multiblimp", "", CODE, "fao"),
    ):
        src, dst = mirror / repo, root / repo
        (dst / folder).mkdir(parents=True, exist_ok=True)
        for entry in (src / folder).iterdir():
            if entry.name != "README.md":
                (dst / folder / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
        (dst / new).symlink_to(src / source, target_is_directory=True)
        card = (src / "README.md").read_text(encoding="utf-8")
        _, front, body = card.split("---", 2)
        meta = yaml.safe_load(front)
        old = next(c for c in meta["configs"] if c["config_name"] == Path(source).name)
        added = yaml.safe_load(yaml.safe_dump(old).replace(Path(source).name, Path(new).name))
        meta["configs"].append(added)
        (dst / "README.md").write_text(f"---\n{yaml.safe_dump(meta, sort_keys=False)}---{body}")


def own_config(built: Path, repo: Path) -> dict:
    """The config a user writes: the mini study's, with one language block, one schedule line and
    where the runs come from (two merge methods and one subset keep the test short)."""
    runs = os.path.relpath(built / "checkpoints", repo)  # another study's runs, as a relative folder
    config = resolve_config(repo / "config" / "config.yaml")
    config["study"] = "own"
    config["data"]["languages"][NEW] = {"subset": SUBSET, "shuffle": True, "multiblimp": CODE}
    config["training"]["schedules"][NEW] = {"steps": 4, "warmup": 1, "decay_start": 3, "decay_steps": 1}
    config["evaluation"]["limit"] = 10
    methods = config["merging"]["methods"]
    config["merging"].update(methods={m: methods[m] for m in ("linear", "ties")}, subsets=[f"swe+{NEW}"])
    config["released"] = {
        "models": {
            "english": f"{ORG}/english-{{setup}}",  # the English base from the Hub (english-1x, -2x)
            **{setup: f"{runs}/{{language}}-{setup}/final" for setup in ("1x", "1x-cloned", "2x")},
            **{f"{NEW}-{setup}": None for setup in ("1x", "1x-cloned", "2x")},  # trained here
        }
    }
    return config


@pytest.fixture(scope="module")
def own_repo(study_repo, hub_root, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if hub_root is None:
        pytest.skip("the new language is added to a test-local copy of the Hub mirror")
    work = tmp_path_factory.mktemp("own")
    hub = work / "hub"
    mirror_with_a_new_language(Path(hub_root), hub)
    for run in ("english-1x", "english-2x"):  # the English base, published on the (stand-in) Hub
        shutil.copytree(study_repo / "checkpoints" / run / "final", hub / ORG / run)
    repo = git_repo(copy_repo(work / "repo"))
    config = own_config(study_repo, repo)
    (repo / "config" / "own-test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return repo, {"GROWUP_HUB_ROOT": str(hub)}


@pytest.mark.slow
def test_a_new_language_trains_from_a_fetched_base_and_merges_with_fetched_models(own_repo, study_repo):
    repo, env = own_repo
    args = ("--configfile", "config/own-test.yaml")
    dry = run_tool(repo, "snakemake", "-n", *args, env=env)
    plan = planned(dry)
    trained = set(planned_resources(dry, "train"))
    assert trained == {f"run={NEW}-{s}" for s in ("1x", "1x-cloned", "2x")}, trained  # no seed, no English
    assert "init_seed" not in plan and plan["clone"] == 1 and plan["fetch_checkpoint"] == 20, plan
    assert set(planned_resources(dry, "clone")) == {"parent=english-1x"}  # a fetched english-1x is cloned
    run_tool(repo, "snakemake", "--cores", "2", *args, env=env)

    ck = repo / "checkpoints"
    assert not (ck / "seed").exists() and not (ck / "init").exists()
    assert read_card(ck / "english-1x" / "final")["hub_id"] == f"{ORG}/english-1x"
    assert read_card(ck / "english-1x-cloned" / "final")["operation"] == "hyperclone x2"
    assert read_card(ck / "isl-2x" / "final")["source"].endswith("checkpoints/isl-2x/final")
    # the tokenizer is the base's, byte for byte, and the new language was packed with it
    base_tokenizer = (study_repo / "checkpoints" / "english-1x" / "final" / "tokenizer.json").read_bytes()
    assert (repo / "data" / "tokenizer" / "tokenizer.json").read_bytes() == base_tokenizer
    for setup in ("1x", "1x-cloned", "2x"):
        run = ck / f"{NEW}-{setup}"
        assert len((run / "metrics.jsonl").read_text().splitlines()) == 4
        assert read_card(run / "final")["parent_tokens"] > 0  # the fetched base's planned lineage
    merge = (repo / "merges" / "2x" / "ties" / f"swe+{NEW}.yaml").read_text()
    assert f"checkpoints/{NEW}-2x/final" in merge and "checkpoints/swe-2x/final" in merge
    assert "base_model: checkpoints/english-2x/final" in merge
    evals = (repo / "results" / "tables" / "evals.csv").read_text()
    assert f"{NEW}-1x,4,multiblimp_{CODE},multiblimp,{NEW},acc," in evals
    assert re.search(rf"^merge-1x-ties-swe\+{NEW},final,multiblimp_{CODE},multiblimp,{NEW},acc,", evals, re.M)
    assert NEW in (repo / "results" / "tables" / "final_scores.md").read_text()
    claims = (repo / "results" / "claims.md").read_text()
    assert (
        len(re.findall(r"^## \d[ab]?\. .*: \*\*(holds|does not hold|inconclusive)\*\*$", claims, re.M)) == 6
    )
    assert (repo / "results" / "figures" / "data_efficiency.png").stat().st_size > 1000
    # nothing but the config was written outside the workflow's (ignored) outputs
    status = run_tool(repo, "git", "status", "--porcelain", "--untracked-files=all").split()
    assert status == ["??", "config/own-test.yaml"], status
