"""The fictional encyclopedia must be reproducible and internally consistent, as the paper's dataset is."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from transferlaw.data import encyclopedia as enc

YEAR = re.compile(r"\byear (\d+)\b")
WINNER = re.compile(r"the (\w+) prevailed|won it for the (\w+)|the (\w+) defeated the")
AGE = re.compile(
    r"only a year old|very year of (?:his|her) birth|(\d+) years old|age of (\d+)|aged (\d+)", re.I
)


@pytest.fixture(scope="module")
def world() -> enc.World:
    return enc.simulate_world(7)


def _sentences(text: str) -> list[str]:
    """Names contain no full stops, so splitting at '. ' and line ends gives whole sentences."""
    return [s for s in re.split(r"(?<=\.)\s+|\n+", text) if s.strip()]


def _age(m: re.Match[str]) -> int:
    if m.group(0).lower().startswith("only a year"):
        return 1
    if "birth" in m.group(0):
        return 0
    return int(next(g for g in m.groups() if g is not None))


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    a, b, c = enc.generate_corpus(3, 40), enc.generate_corpus(3, 40), enc.generate_corpus(4, 40)
    assert a.encode() == b.encode()
    assert a != c


def test_entries_start_with_title_and_are_separated(world: enc.World) -> None:
    text = enc.generate_corpus(7, 5)
    names = [ch.name for ch in enc._entry_order(world)[:5]]
    assert text.startswith(names[0] + "\n\n")
    for name in names:
        assert f"\n\n{name}\n\n" in "\n\n" + text


def test_event_years_lie_in_lifetime_and_match_world(world: enc.World) -> None:
    checked_ages = checked_wars = 0
    for ch in world.characters[::3]:
        text = enc.render_entry(world, ch)
        end = ch.end_year(world)
        allowed = {ch.birth} | {e.year for e in world.lifetime_events(ch)} | {e.year for e in ch.life_events}
        if ch.death is not None:
            allowed.add(ch.death)
        for sentence in _sentences(text):
            years = [int(y) for y in YEAR.findall(sentence)]
            for y in years:
                assert ch.birth <= y <= end, (ch.name, sentence)
                assert y in allowed, (ch.name, sentence)
            ages = list(AGE.finditer(sentence))
            if ages and len(years) == 1:
                assert _age(ages[0]) == years[0] - ch.birth, sentence
                checked_ages += 1
            if re.search(r"\bwar\b", sentence) and years:
                wars = [e for e in world.lifetime_events(ch) if e.kind == "war" and e.year == years[0]]
                assert wars, sentence
                m = WINNER.search(sentence)
                assert m, sentence
                stated = next(g for g in m.groups() if g is not None)
                assert stated in {world.cultures[e.winner].name for e in wars}, sentence
                checked_wars += 1
    assert checked_ages > 100 and checked_wars > 10


def test_inter_culture_war_same_in_both_histories(world: enc.World) -> None:
    wars = [e for e in world.events if e.kind == "war"]
    assert wars
    for war in wars:
        a, b = war.cultures
        assert a != b and war.winner in war.cultures
        in_a = [(e.year, e.winner, e.cause) for e in world.history(a) if e.id == war.id]
        in_b = [(e.year, e.winner, e.cause) for e in world.history(b) if e.id == war.id]
        assert in_a == in_b == [(war.year, war.winner, war.cause)]


def test_parents_born_at_least_16_years_earlier(world: enc.World) -> None:
    by_id = {ch.id: ch for ch in world.characters}
    linked = 0
    for ch in world.characters:
        for parent in ch.parents:
            if parent.id is not None:
                p = by_id[parent.id]
                assert p.birth <= ch.birth - 16
                assert p.name == parent.name and p.profession == parent.profession
                linked += 1
    assert linked > len(world.characters)  # most characters have simulated parents


def test_entry_mentions_parents_traits_and_birth(world: enc.World) -> None:
    for ch in world.characters[:50]:
        text = enc.render_entry(world, ch)
        assert f"year {ch.birth}" in text
        for parent in ch.parents:
            assert parent.name in text and parent.profession in text
        for i in ch.traits:
            adj, noun, _ = enc.TRAITS[i]
            assert adj in text or noun in text
        assert len(text.split("\n\n")) >= 3


def test_culture_names_use_culture_syllables(world: enc.World) -> None:
    """A name's given part is built from its culture's own syllables, so names look culture-specific."""
    for ch in world.characters[:100]:
        given = ch.first_name.lower()
        sylls = world.cultures[ch.culture].syllables
        assert re.fullmatch("(?:" + "|".join(map(re.escape, sylls)) + ")+", given), (given, sylls)


def test_sidecar_sha256_matches(tmp_path) -> None:
    out = tmp_path / "enc.txt"
    enc.main([str(out), "--seed", "5", "--entries", "20"])
    meta = json.loads((tmp_path / "enc.txt.json").read_text())
    data = out.read_bytes()
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["bytes"] == len(data)
    assert (meta["seed"], meta["n_entries"], meta["generator"]) == (5, 20, enc.GENERATOR)
    assert meta["version"] == enc.GENERATOR_VERSION and meta["n_characters"] >= 20


def test_size_scales_with_entries() -> None:
    small, large = enc.generate_corpus(1, 30), enc.generate_corpus(1, 120)
    assert 2.5 < len(large) / len(small) < 6
    assert large.startswith(
        small.rstrip("\n")
    )  # same world, same order: a larger corpus extends a smaller one


def test_300_entries_big_enough() -> None:
    # its speed is not a test (it failed under load): the corpus is generated in the study's data rule
    text = enc.generate_corpus(0, 300)
    assert len(text.encode()) >= 300_000
