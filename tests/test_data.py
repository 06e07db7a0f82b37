import lzma

import numpy as np
import pytest
from conftest import REPO

from transferlaw.data.prepare import (
    DataError,
    PreparedData,
    check_sizes,
    make_sequences,
    prepare,
    read_text,
    split_order,
    subset,
    tokenize,
)


def test_read_text_handles_compression_and_names_bad_files(tmp_path):
    (tmp_path / "a.txt.xz").write_bytes(lzma.compress("héllo\nworld\n".encode()))
    assert read_text(tmp_path / "a.txt.xz") == "héllo\nworld\n"
    with pytest.raises(DataError, match="missing.txt"):
        read_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(DataError, match="empty.txt"):
        read_text(tmp_path / "empty.txt")


def test_tokenize_in_chunks_equals_whole_text(tiny_tokenizer):
    text = "".join(f"line {i}: the quick brown fox\n" for i in range(5000))
    chunked = tokenize(text, tiny_tokenizer)
    whole = np.array(tiny_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert np.array_equal(chunked, whole)
    assert tiny_tokenizer.decode(chunked.tolist()) == text


def test_split_is_disjoint_and_deterministic():
    ev, tr = split_order(100, 20, seed=3)
    assert len(ev) == 20 and len(tr) == 80
    assert not set(ev) & set(tr)
    assert sorted(np.concatenate([ev, tr]).tolist()) == list(range(100))
    ev2, tr2 = split_order(100, 20, seed=3)
    assert np.array_equal(ev, ev2) and np.array_equal(tr, tr2)
    assert not np.array_equal(split_order(100, 20, seed=4)[0], ev)


def test_subsets_are_nested_prefixes():
    train = np.arange(40 * 8).reshape(40, 8)
    small, large = subset(train, 5, "sequences"), subset(train, 20, "sequences")
    assert len(small) == 5 and len(large) == 20
    for a, b in zip(small, large, strict=False):
        assert np.array_equal(a, b)


def test_token_unit_cuts_the_last_sequence():
    train = np.arange(10 * 8).reshape(10, 8)
    seqs = subset(train, 20, "tokens")
    assert [len(s) for s in seqs] == [8, 8, 4]
    assert sum(len(s) for s in seqs) == 20
    assert np.array_equal(seqs[2], train[2][:4])
    with pytest.raises(DataError, match="needs 11 sequences"):
        subset(train, 81, "tokens")


def test_prepare_holds_out_a_fixed_eval_split(tiny_tokenizer, tmp_path):
    text = read_text(REPO / "resources/datasets/devils_dictionary.txt.xz")[:40_000]
    data, manifest = prepare(text, tiny_tokenizer, context_length=32, eval_sequences=10, seed=0, name="dd")
    assert data.eval.shape == (10, 32)
    assert data.train.shape[1] == 32
    assert manifest["sequences"] == 10 + len(data.train)
    rows = {tuple(r) for r in data.train}
    assert not any(tuple(r) in rows for r in data.eval)  # no eval sequence is trained on
    data.save(tmp_path / "d.npz", manifest)
    back = PreparedData.load(tmp_path / "d.npz")
    assert np.array_equal(back.eval, data.eval) and np.array_equal(back.train, data.train)
    assert (tmp_path / "d.json").exists()


def test_too_small_dataset_names_the_dataset(tiny_tokenizer):
    text = read_text(REPO / "resources/datasets/devils_dictionary.txt.xz")[:5_000]
    with pytest.raises(DataError, match="'tiny'"):
        prepare(text, tiny_tokenizer, context_length=32, eval_sequences=1000, seed=0, name="tiny")
    manifest = {"context_length": 32, "train_pool_sequences": 10, "eval_sequences": 5, "tokens": 480}
    check_sizes(manifest, [4, 10], "sequences", "tiny")
    with pytest.raises(DataError, match=r"datasets\.tiny\.sizes"):
        check_sizes(manifest, [11], "sequences", "tiny")


def test_make_sequences_drops_the_tail():
    seqs = make_sequences(np.arange(70, dtype=np.int32), 32)
    assert seqs.shape == (2, 32) and seqs[1, 0] == 32


def test_a_line_of_millions_of_bases_is_cut_for_the_tokenizer():
    """A FASTA record is one line: the tokenizer gets bounded pieces, and every character is kept."""
    from transferlaw.data.prepare import _line_chunks

    text = "header line\n" + "ACGT" * 50_000 + "\nshort\n" + "w " * 10_000
    chunks = list(_line_chunks(text, chars=1000))
    assert "".join(chunks) == text
    assert max(map(len, chunks)) <= 2000
