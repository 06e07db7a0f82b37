"""The workflow's one path layout, owned by its rules: every rule written out by name, and the one-time move
(`snakemake migrate_layout`) of a study written before every record named its method and seed."""

import json
import re
from base64 import urlsafe_b64encode
from pathlib import Path

import pytest
import yaml
from conftest import REPO, assert_nothing_planned, edit_config, make_study_dir, planned_outputs, snakemake

from transferlaw.config import base_seed, resolve
from transferlaw.schema import read_records

RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]


@pytest.mark.slow  # runs Snakemake (--list-rules)
def test_every_rule_of_the_workflow_is_written_out_by_name(tmp_path):
    """`grep 'rule plot_iso_loss'` finds the rule: none is made in a loop or by `use rule ... as`."""
    listed = snakemake(make_study_dir(tmp_path / "study"), "--list-rules").stdout.split()
    text = "\n".join(p.read_text() for p in RULE_FILES)
    written = re.findall(r"^(?:rule|checkpoint) (\w+):", text, flags=re.MULTILINE)
    assert {"plot_iso_loss", "finetune", "fit", "bootstrap", "migrate_layout"} <= set(listed)
    assert sorted(listed) == sorted(written) and len(written) == len(set(written))
    assert not re.search(r"^use rule", text, flags=re.MULTILINE)


# ---- a study in the old layout ---------------------------------------------------------------------------
def _metadata(study: Path, path: str) -> Path:
    """Where Snakemake keeps the metadata of the output ``path`` (its file persistence: one JSON file per
    output, named by the path in urlsafe base64)."""
    return study / ".snakemake/metadata" / urlsafe_b64encode(path.encode()).decode()


def to_old_layout(study: Path) -> dict[str, str]:
    """Rewrite a finished study as the workflow left it before every record named its method and seed: each
    full fine-tune at its dataset's own seed is `f<size>.parquet` (record, log and benchmark), and
    Snakemake's metadata knows it by that name (its own entry, and the list of inputs of its dataset's
    table). Returns today's path -> the old one, of every file moved."""
    cfg = resolve(yaml.safe_load((study / "config.yaml").read_text()))
    renamed = {}
    for dataset in cfg["datasets"]:
        seed = base_seed(cfg, dataset)
        for new in sorted((study / "results/runs" / dataset).glob(f"*/*/f*.full.s{seed}.parquet")):
            rel = new.relative_to(study / "results/runs").as_posix()
            stem, old_stem = rel[: -len(".parquet")], rel.split(".")[0]
            for folder, ext in (("results/runs", "parquet"), ("logs/finetune", "log")):
                renamed[f"{folder}/{stem}.{ext}"] = f"{folder}/{old_stem}.{ext}"
            renamed[f"results/benchmarks/finetune/{stem}.tsv"] = f"results/benchmarks/finetune/{old_stem}.tsv"
    for new, old in renamed.items():
        (study / new).rename(study / old)
        entry = _metadata(study, new)
        if entry.exists():  # a record: its entry, with the old name of its log
            meta = json.loads(entry.read_text())
            meta["log"] = sorted(renamed.get(p, p) for p in meta["log"])
            _metadata(study, old).write_text(json.dumps(meta))
            entry.unlink()
    for dataset in cfg["datasets"]:
        entry = _metadata(study, f"results/runs/{dataset}.parquet")
        meta = json.loads(entry.read_text())
        meta["input"] = sorted(renamed.get(p, p) for p in meta["input"])
        meta["input_checksums"] = {renamed.get(p, p): c for p, c in meta["input_checksums"].items()}
        entry.write_text(json.dumps(meta))
    return renamed


def snapshot(study: Path, paths) -> dict[str, tuple[bytes, int]]:
    return {p: ((study / p).read_bytes(), (study / p).stat().st_mtime_ns) for p in paths}


def test_a_study_in_the_old_layout_is_moved_once_and_reruns_nothing(study_copy):
    study = study_copy
    renamed = to_old_layout(study)
    records = {new: old for new, old in renamed.items() if new.endswith(".parquet")}
    assert len(records) == 18  # 2 datasets x 3 checkpoints x 3 sizes, every run of the small study
    # today's rules do not know the old names: without the move, every run would be redone
    planned = planned_outputs(study)
    assert set(records) <= set(planned)
    before = snapshot(study, renamed.values())

    proc = snakemake(study, "migrate_layout", "--cores", "1")
    assert f"moved {len(renamed)} file(s)" in proc.stdout + proc.stderr
    assert_nothing_planned(study)
    # every file is where today's rules look, with its bytes and modification time: no record was rewritten
    assert snapshot(study, renamed) == {new: before[old] for new, old in renamed.items()}
    assert not any((study / old).exists() for old in renamed.values())
    moved = (study / "logs/migrate_layout.log").read_text().splitlines()
    assert sorted(moved) == sorted(f"{old} -> {new}" for new, old in renamed.items())

    # the second time there is nothing to move, and nothing changes
    proc = snakemake(study, "migrate_layout", "--cores", "1")
    assert "moved 0 file(s)" in proc.stdout + proc.stderr
    assert snapshot(study, renamed) == {new: before[old] for new, old in renamed.items()}
    assert_nothing_planned(study)

    # Snakemake's record of each run moved with it: editing a dataset's settings still reruns its runs
    edit_config(study, lambda c: c["datasets"]["chloroplast-dna"].update(finetune={"lr": 0.005}))
    runs = [o for o in planned_outputs(study) if o.startswith("results/runs/") and o.count("/") > 2]
    assert sorted(runs) == sorted(r for r in records if "/chloroplast-dna/" in r)


def test_a_record_in_both_layouts_stops_the_move_before_anything_moves(study_copy):
    study = study_copy
    renamed = to_old_layout(study)
    new, old = next((n, o) for n, o in renamed.items() if n.endswith(".parquet"))
    (study / new).write_bytes((study / old).read_bytes())  # the same run, redone under today's name
    before = snapshot(study, [*renamed.values(), new])
    metadata = {p: p.read_bytes() for p in (study / ".snakemake/metadata").iterdir()}

    proc = snakemake(study, "migrate_layout", "--cores", "1", check=False)
    assert proc.returncode != 0
    said = proc.stdout + proc.stderr
    assert "nothing was moved" in said and f"{old} -> {new}" in said
    assert snapshot(study, [*renamed.values(), new]) == before
    assert not any((study / n).exists() for n in renamed if n != new)
    assert {p: p.read_bytes() for p in (study / ".snakemake/metadata").iterdir()} == metadata
    assert read_records(str(study / old)).equals(read_records(str(study / new)))


def test_moves_are_checked_before_any_file_moves(tmp_path):
    from transferlaw.io import move_files

    for name in ("a", "b", "c", "taken"):
        (tmp_path / name).write_text(name)
    stamp = (tmp_path / "a").stat().st_mtime_ns
    pairs = [(str(tmp_path / o), str(tmp_path / n)) for o, n in [("a", "sub/A"), ("b", "taken"), ("c", "x")]]
    with pytest.raises(FileExistsError, match="nothing was moved") as err:
        move_files(pairs)
    assert f"{tmp_path / 'b'} -> {tmp_path / 'taken'}" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c", "taken"]
    clash = [(str(tmp_path / "a"), str(tmp_path / "y")), (str(tmp_path / "c"), str(tmp_path / "y"))]
    with pytest.raises(FileExistsError, match=r"^2 move\(s\)"):
        move_files(clash)
    pairs[1] = (str(tmp_path / "b"), str(tmp_path / "B"))
    assert move_files(pairs) == pairs
    assert (tmp_path / "sub/A").read_text() == "a" and (tmp_path / "sub/A").stat().st_mtime_ns == stamp
    assert move_files(pairs) == []  # the second time: nothing left to move
