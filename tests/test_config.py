"""Bad input fails at parse time with a message naming the culprit, before any job runs."""

import copy
import json
import lzma
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SMALL_CONFIG

from transferlaw.config import (
    ConfigError,
    finetune_settings,
    load_config,
    log2_steps,
    prepare_settings,
    resolve,
)


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


def hub_model(**over):
    return {
        "source": "hub",
        "repo_id": "EleutherAI/pythia-14m",
        "tokens_per_step": 2097152,
        "revisions": ["step1000", "step2000"],
        **over,
    }


RULE = {"log_spaced": {"count": 3, "first": 1000, "last": 143000}}


def test_a_revision_rule_is_for_hub_models(tmp_path):
    with pytest.raises(ConfigError, match=r"models\.tiny-neox\.revisions: a rule is resolved against a hub"):
        load(tmp_path, lambda c: c["models"]["tiny-neox"].update(revisions=RULE))
    cfg = load(tmp_path, lambda c: c["models"].update(pythia=hub_model(revisions=RULE)))
    assert cfg["models"]["pythia"]["revisions"] == RULE


def test_a_hub_model_is_planned_without_its_checkpoints(tmp_path):
    """Revisions are fetched and checked by the prefetch and gate jobs, not at parse time: a machine without
    the checkpoints (or the internet) can still plan the study."""
    cfg = load(tmp_path, lambda c: c["models"].update(pythia=hub_model(cache_dir=str(tmp_path / "none"))))
    assert cfg["models"]["pythia"]["allow_identical"] == []


@pytest.mark.parametrize(
    ("model", "culprit"),
    [
        (hub_model(tokens_per_step=None), "models.pythia.tokens_per_step"),
        ({k: v for k, v in hub_model().items() if k != "repo_id"}, r"models\.pythia\.repo_id is required"),
        (hub_model(allow_identical=[["step1000", "step3000"]]), r"allow_identical: step3000 not in"),
        (hub_model(repo_id="../../etc"), "repo_id"),
        (
            hub_model(revisions={"log_spaced": {"count": 3, "first": 9, "last": 9}}),
            r"models\.pythia\.revisions\.log_spaced: first \(9\) must be below last \(9\)",
        ),
        (
            hub_model(revisions=RULE, allow_identical=[["step1000", "step2000"]]),
            r"models\.pythia\.allow_identical: a rule resolves to revisions that pass the gate",
        ),
    ],
)
def test_bad_hub_model_names_the_key(tmp_path, model, culprit):
    model = {k: v for k, v in model.items() if v is not None}
    with pytest.raises(Exception, match=culprit):
        load(tmp_path, lambda c: c["models"].update(pythia=model))


@pytest.mark.parametrize(
    ("rule", "culprit"),
    [
        (
            {"log_spaced": {"count": 3, "first": 0, "last": 9}},
            r"revisions\.log_spaced\.first: 0 is less than",
        ),
        (
            {"log_spaced": {"count": 1, "first": 2, "last": 9}},
            r"revisions\.log_spaced\.count: 1 is less than",
        ),
        (
            {"log_spaced": {"count": "3", "first": 2, "last": 9}},
            r"revisions\.log_spaced\.count: '3' is not of type",
        ),
        ({"log_spaced": {"count": 3, "first": 2}}, r"revisions\.log_spaced: 'last' is a required"),
        (
            {"log_spaced": {"count": 3, "first": 2, "last": 9, "every": 1}},
            r"revisions\.log_spaced: .*'every' was unexpected",
        ),
        ({"every": 1000}, r"revisions: .*'every' was unexpected"),
        ({}, r"revisions: 'log_spaced' is a required"),
    ],
)
def test_a_bad_revision_rule_names_its_key(tmp_path, rule, culprit):
    """Each field of a rule is checked before anything runs, and the message names its config key and says
    what a rule is (Snakemake's own message would give a JSON path)."""
    with pytest.raises(ConfigError, match=r"models\.pythia\." + culprit) as err:
        load(tmp_path, lambda c: c["models"].update(pythia=hub_model(revisions=rule)))
    assert "{log_spaced: {count: N, first: F, last: L}}" in str(err.value)


def test_a_bad_revision_list_is_still_reported_against_the_list_s_schema(tmp_path):
    """Rules did not blur a bad list's message: it still says which name is not a branch."""
    with pytest.raises(Exception, match=r"'main' does not match '\^step\[0-9\]\+\$'"):
        load(tmp_path, lambda c: c["models"].update(pythia=hub_model(revisions=["step1000", "main"])))


@pytest.mark.parametrize(
    ("block", "culprit"),
    [
        ({"url": "https://example.org/a.txt", "path": "x.txt"}, "exactly one of .* .it has path, url"),
        ({"hub": {"name": "org/ds", "revision": "main"}, "format": "text"}, "format applies to"),
        ({"path": "resources/datasets/devils_dictionary.txt.xz", "format": "maildir"}, "is a file"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"path": "resources/pretrain"}, "cannot read|format"),
        (
            {"path": "resources/datasets/devils_dictionary.txt.xz", "keep_lines": True},
            r"datasets\.bad\.keep_lines applies to fasta files; this dataset is read as text",
        ),
    ],
)
def test_bad_dataset_source_names_the_key(tmp_path, block, culprit):
    with pytest.raises(Exception, match=culprit):
        load(tmp_path, lambda c: c["datasets"].update(bad={**block, "sizes": [4]}))


def test_bad_model_name_is_refused_before_it_becomes_a_path(tmp_path):
    with pytest.raises(Exception, match=r"\.\./x"):
        load(tmp_path, lambda c: c["models"].update({"../x": hub_model()}))


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


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (lambda c: c["datasets"].update({"a;rm -rf x": c["datasets"]["devils-dictionary"]}), "rm -rf"),
        (lambda c: c["datasets"].update({"$(id)": c["datasets"]["devils-dictionary"]}), r"\$\(id\)"),
        (lambda c: c["models"]["tiny-neox"].update(revisions=["step0 && id"]), "step0 && id"),
        (lambda c: c["models"]["tiny-neox"].update(revisions=["step0/../../x"]), r"step0/\.\./\.\./x"),
    ],
)
def test_names_that_would_become_shell_words_or_paths_are_refused(tmp_path, edit, culprit):
    with pytest.raises(Exception, match=culprit):
        load(tmp_path, edit)


def test_no_rule_runs_a_shell_command():
    """Config values reach jobs as Python values (params, wildcards), never through a shell: no rule has a
    `shell:` directive that a name or path could be spliced into."""
    rules = [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
    assert len(rules) > 5
    assert [str(p) for p in rules if re.search(r"^\s*shell:", p.read_text(), re.M)] == []


def test_config_readme_documents_every_key_and_is_generated_from_the_schema():
    from transferlaw.config import describe_config

    text = (REPO / "config" / "README.md").read_text()
    assert text == describe_config(), "regenerate: transferlaw config-docs > config/README.md"
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert all(not line.rstrip().endswith("|  |") for line in rows)  # every key says what it means
    for key in ("finetune.precision", "analysis.l2_exponents", "models.<name>.allow_identical", "fit.form"):
        assert f"| `{key}` |" in text


def test_a_download_pin_is_checked_against_the_recorded_download(tmp_path):
    from transferlaw.config import check_download_pin

    url = "https://example.org/corpus.txt"
    cfg = {"datasets": {"d": {"url": url, "sha256": "a" * 64, "sizes": [4]}}}
    record = tmp_path / "d.txt.json"
    check_download_pin(cfg, "d", record)  # nothing downloaded yet: the fetch job checks it
    record.write_text(json.dumps({"url": url, "sha256": "a" * 64}))
    check_download_pin(cfg, "d", record)
    record.write_text(json.dumps({"url": url, "sha256": "b" * 64}))
    with pytest.raises(ConfigError, match=r"datasets\.d\.sha256: a{64} is not the sha256 .* \(b{64}"):
        check_download_pin(cfg, "d", record)
    record.write_text(json.dumps({"url": url + "?v=2", "sha256": "b" * 64}))  # another URL: refetched anyway
    check_download_pin(cfg, "d", record)


#: the paper's values (Barnett 2024: section 4.2's fine-tuning, section 5.2's bootstrap, appendix D's grids)
PAPER_DEFAULTS = {
    "finetune.context_length": 256,
    "finetune.lr": 1e-5,
    "finetune.betas": [0.9, 0.999],
    "finetune.eps": 1e-8,
    "finetune.weight_decay": 0.0,
    "finetune.micro_batch": 10,
    "finetune.grad_accum": 25,
    "finetune.patience": 3,
    "analysis.bootstrap_samples": 4000,
    "analysis.l2_exponents": [0.0, 0.01, 0.1, 1.0, 5.0, 10.0, 50.0],
    "analysis.l2_coefficients": [0.0, 0.0001, 0.001, 0.01, 0.1],
}


def test_the_defaults_said_to_be_the_paper_s_are_and_the_two_that_differ_say_so():
    """The schema (and config/README.md, generated from it) names which defaults are the paper's: each of
    them is; the unit and the law form are not, and the text says so; no README says all defaults are."""
    from transferlaw.defaults import default, load_schema

    text = " ".join(load_schema()["description"].split())
    for key, value in PAPER_DEFAULTS.items():
        assert default(key) == value, key
        assert key.rsplit(".", 1)[1] in text, f"{key} is the paper's but the schema does not say so"
    assert (
        default("finetune.unit") == "sequences"
        and "finetune.unit is sequences (the paper's sizes are tokens)" in text
    )
    assert default("fit.form") == "mikami_shifted" and "fit.form is mikami_shifted (eq. 7;" in text
    for doc in ("README.md", "config/README.md"):
        assert "defaults are the paper's values" not in (REPO / doc).read_text(), doc


def test_keep_lines_is_part_of_a_fasta_source_only_when_on():
    """`keep_lines` changes the text, so it is part of the source (the prepare job reruns when it is turned
    on); off, the source is what it was before the key existed, so no study written before it reruns. The
    paper's configs turn it on for the genome; the embedded default study has no FASTA dataset."""
    from transferlaw.config import dataset_source

    block = {"url": "https://example.org/chrE3.fa.gz", "sizes": [10]}
    cfg = {"datasets": {"g": {**block, "keep_lines": False}}}
    assert dataset_source(cfg, "g") == {"url": block["url"], "format": "fasta"}
    cfg = {"datasets": {"g": {**block, "keep_lines": True}}}
    assert dataset_source(cfg, "g") == {"url": block["url"], "format": "fasta", "keep_lines": True}
    for paper in ("barnett2024.yaml", "barnett2024-pythia-1.4b.yaml"):
        study = resolve(yaml.safe_load((REPO / "config" / paper).read_text()))
        assert dataset_source(study, "house-cat-genome")["keep_lines"] is True
    default = resolve(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert all("keep_lines" not in dataset_source(default, d) for d in default["datasets"])
