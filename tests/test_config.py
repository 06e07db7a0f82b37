"""Bad input fails at parse time with a message naming the culprit, before any job runs."""

import copy
import lzma
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SMALL_CONFIG
from transferlaw.config import ConfigError, finetune_settings, load_config, log2_steps, prepare_settings, resolve


def write_config(tmp_path: Path, edit) -> Path:
    cfg = yaml.safe_load(SMALL_CONFIG.read_text())
    edit(cfg)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def load(tmp_path, edit):
    return load_config(write_config(tmp_path, edit), root=REPO)


def test_small_config_is_valid_and_resolved(tmp_path):
    cfg = load(tmp_path, lambda c: None)
    assert cfg["finetune"]["betas"] == [0.9, 0.999]  # schema default (the paper's)
    assert cfg["pretrain"]["save_steps"] == log2_steps(256)
    assert cfg["fit"]["model"] == "tiny-neox"


def test_dataset_overrides_only_touch_that_dataset(tmp_path):
    def edit(c):
        c["datasets"]["chloroplast-dna"]["finetune"] = {"lr": 0.5}

    cfg = load(tmp_path, edit)
    assert finetune_settings(cfg, "chloroplast-dna")["lr"] == 0.5
    assert finetune_settings(cfg, "devils-dictionary")["lr"] == cfg["finetune"]["lr"]
    assert "sizes" not in str(prepare_settings(cfg, "devils-dictionary"))


def test_log2_steps_include_zero_and_last():
    assert log2_steps(1000) == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000]


def test_missing_dataset_file(tmp_path):
    def edit(c):
        c["datasets"]["devils-dictionary"]["path"] = "resources/datasets/nope.txt.xz"

    with pytest.raises(ConfigError, match=r"datasets\.devils-dictionary\.path: file not found"):
        load(tmp_path, edit)


def test_empty_dataset_file(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")

    def edit(c):
        c["datasets"]["devils-dictionary"]["path"] = str(empty)

    with pytest.raises(ConfigError, match=r"datasets\.devils-dictionary\.path: file is empty"):
        load(tmp_path, edit)


def test_dataset_too_small_for_sizes(tmp_path):
    small = tmp_path / "small.txt.xz"
    small.write_bytes(lzma.compress(b"ACGT" * 200))

    def edit(c):
        c["datasets"]["chloroplast-dna"]["path"] = str(small)

    with pytest.raises(ConfigError, match=r"datasets\.chloroplast-dna\.path: .* fewer than"):
        load(tmp_path, edit)


def test_unknown_revision(tmp_path):
    def edit(c):
        c["models"]["tiny-neox"]["revisions"].append("step3")

    with pytest.raises(ConfigError, match=r"models\.tiny-neox\.revisions: step3 not saved"):
        load(tmp_path, edit)


def test_unknown_hub_revision(tmp_path):
    def edit(c):
        c["models"]["pythia"] = {"source": "hub", "repo_id": "EleutherAI/pythia-14m", "cache_dir": str(tmp_path),
                                 "tokens_per_step": 2097152, "revisions": ["step1000"]}

    with pytest.raises(ConfigError, match=r"models\.pythia\.revisions: step1000 of EleutherAI/pythia-14m"):
        load(tmp_path, edit)


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (lambda c: c["finetune"].update(lr="fast"), "lr"),
        (lambda c: c["datasets"]["devils-dictionary"].update(sizes=[4, "eight"]), "eight"),
        (lambda c: c["models"]["tiny-neox"].update(revisions=["final"]), "final"),
        (lambda c: c["finetune"].update(unit="bytes"), "bytes"),
        (lambda c: c["pretrain"].update(steps=-3), "steps"),
        (lambda c: c.update(datasetz={}), "datasetz"),
    ],
)
def test_schema_type_errors_name_the_key(tmp_path, edit, culprit):
    with pytest.raises(Exception, match=culprit):
        load(tmp_path, edit)


def test_resolve_does_not_mutate_input():
    raw = yaml.safe_load(SMALL_CONFIG.read_text())
    before = copy.deepcopy(raw)
    resolve(raw)
    assert raw == before
