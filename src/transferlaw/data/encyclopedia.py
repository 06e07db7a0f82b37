"""The fictional encyclopedia of Barnett (2024, appendix F.1), generated without a language model.

The paper's dataset is biographies of characters in an invented fantasy world, written so that no model
could have seen the text in pre-training, while the facts stay consistent from one entry to the next. Here a
small simulation engine plays the part of the paper's "simulation engine": it invents cultures (each with
its own naming syllables), a dated timeline of local and inter-culture events (an inter-culture event is a
single record shared by both cultures, so both histories agree on its year and outcome), and a population
of characters with parents, professions, traits and personal events. Templates with several alternative
wordings per fact, chosen by a seeded RNG, then render one biography per character.

Everything is a pure function of the seed: the world uses ``random.Random(seed)`` and each entry uses an RNG
seeded from ``(seed, character id)``, so an entry's text does not depend on which other entries are rendered
(a corpus of N entries is a prefix of one of M > N entries from the same world).
"""

from __future__ import annotations

import argparse
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transferlaw.io import write_json, write_text

GENERATOR = "transferlaw.data.encyclopedia"
GENERATOR_VERSION = "1.0.0"
DEFAULT_N_CHARACTERS = 400

# --- vocabulary ---------------------------------------------------------------------------------------

ONSETS = "b c d f g h k l m n p r s t v z th sh dr kr br gl tr y w j el al or".split()
VOWELS = "a e i o u a e i o ae ei ou y ia".split()
CODAS = ["", "", "", "", "n", "r", "l", "s", "th", "m", "x", "nd", "rn", "z", "v"]
CULTURE_SUFFIXES = ["i", "une", "essi", "ar", "ian", "ori", "dor", "eth", "ani", "oth", "ira", "uun"]
WORLD_SUFFIXES = ["orium", "ara", "heim", "oria", "endal", "ystra"]
CITY_SUFFIXES = ["holm", "gard", "mere", "spire", "ford", "reach", "haven", "vale"]

MUNDANE_PROFESSIONS = [
    "blacksmith", "weaver", "farmer", "fisherman", "merchant", "scribe", "brewer", "stonemason",
    "herbalist", "cartographer", "shipwright", "soldier", "innkeeper", "potter", "tax collector",
    "bard", "midwife", "tanner", "astronomer", "physician",
]  # fmt: skip
MAGICAL_PROFESSIONS = [
    "Elemental Aligned Chef", "Warlock", "spell tutor", "rune carver", "storm caller", "dream weaver",
    "potion brewer", "bone oracle", "sky-ship navigator", "familiar trainer", "court sorcerer",
    "glyph binder", "moon priestess", "ward smith", "necromantic archivist", "druid of the ash groves",
]  # fmt: skip
# (adjective, noun, a clause that shows the trait in action)
TRAITS = [
    ("eloquent", "eloquence", "could talk a river into changing its course"),
    ("optimistic", "optimism", "always found a reason to hope"),
    ("cruel", "cruelty", "was known to punish small mistakes without mercy"),
    ("curious", "curiosity", "took apart every device that came within reach"),
    ("stubborn", "stubbornness", "never once admitted to being wrong"),
    ("generous", "generosity", "gave away most of what came into the house"),
    ("secretive", "secrecy", "kept a locked diary that no one was ever allowed to read"),
    ("brave", "bravery", "stood first in line whenever danger came"),
    ("melancholic", "melancholy", "spent long evenings staring at the sea"),
    ("ambitious", "ambition", "dreamed of a seat on the royal council"),
    ("pious", "piety", "prayed at the shrine every dawn"),
    ("witty", "wit", "was famous for sharp remarks at every feast"),
    ("patient", "patience", "could spend a whole season on a single task"),
    ("jealous", "jealousy", "resented every honour given to a rival"),
    ("kind", "kindness", "nursed stray animals back to health"),
    ("reckless", "recklessness", "rode out into storms for the thrill of it"),
]  # fmt: skip
WAR_CAUSES = [
    "the salt marshes", "an insult at a royal feast", "a contested border",
    "the theft of a sacred relic", "fishing rights on the inland sea", "the murder of an envoy",
    "control of the mountain passes", "a broken marriage pact", "rival claims to a silver mine",
]  # fmt: skip
VICTORY_REASONS = [
    "superior military leadership", "a sudden alliance with the river spirits", "better-forged steel",
    "the skill of their war-mages", "a daring night attack", "greater numbers", "a traitor in the enemy camp",
    "cavalry mounted on giant elk",
]  # fmt: skip
PLAGUES = ["the grey cough", "the weeping fever", "the sleeping sickness", "the blue pox", "the shaking ague"]
DISCOVERIES = [
    "a vein of star-iron", "a spring of healing water", "the ruins of a forgotten city",
    "a new way to brew glowing ink", "a map of the underground rivers", "the secret of fireproof cloth",
    "a herb that cures the weeping fever", "a comet that returns every forty years",
]  # fmt: skip
TOMES = [
    "the Codex of Hollow Names", "the Book of Unmaking", "the Ninth Grimoire", "the Ashen Litany",
    "the Whispering Almanac", "the Scroll of Inverted Stars",
]  # fmt: skip
WORKS = [
    "a treatise on the binding of winds", "a song cycle about the founding of the realm",
    "a great tapestry of the royal line", "a bridge across the gorge", "an almanac of omens",
    "a cookbook of elemental recipes", "a catalogue of the northern stars", "a new dialect of spell-speech",
]  # fmt: skip

LOCAL_KINDS = ["famine", "drought", "well", "plague", "discovery", "tome", "flood", "festival", "coronation"]
LOCAL_WEIGHTS = [3, 3, 2, 2, 3, 2, 2, 2, 1]
SHARED_KINDS = ["war", "trade", "marriage"]
SHARED_WEIGHTS = [4, 3, 2]


# --- the world ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Culture:
    id: int
    name: str
    syllables: tuple[str, ...]
    cities: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    """One dated event. ``cultures`` holds one culture for a local event and two for a shared one; a shared
    event is a single record listed in both cultures' histories, which is what keeps them consistent."""

    id: int
    year: int
    kind: str
    cultures: tuple[int, ...]
    winner: int | None = None
    cause: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Parent:
    name: str
    profession: str
    culture: int
    id: int | None  # None: an invented ancestor born before the simulated population


@dataclass(frozen=True)
class LifeEvent:
    year: int
    kind: str
    detail: str


@dataclass
class Character:
    id: int
    name: str
    culture: int
    sex: str
    birth: int
    death: int | None
    profession: str
    traits: tuple[int, ...]
    parents: tuple[Parent, Parent]
    life_events: list[LifeEvent] = field(default_factory=list)

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def end_year(self, world: World) -> int:
        """Last year of the lifetime window: the death year, or the last simulated year if still alive."""
        return self.death if self.death is not None else world.years - 1


@dataclass
class World:
    seed: int
    name: str
    years: int
    cultures: list[Culture]
    events: list[Event]
    characters: list[Character]

    def history(self, culture: int) -> list[Event]:
        """The culture's timeline: its local events and every shared event it took part in, by year."""
        return [e for e in self.events if culture in e.cultures]

    def lifetime_events(self, character: Character) -> list[Event]:
        """Events of the character's culture that happened while the character was alive."""
        end = character.end_year(self)
        return [e for e in self.history(character.culture) if character.birth <= e.year <= end]

    def children(self, character: Character) -> list[Character]:
        return [c for c in self.characters if any(p.id == character.id for p in c.parents)]


def _word(rng: random.Random, syllables: Sequence[str], n: int) -> str:
    return "".join(rng.choice(syllables) for _ in range(n)).capitalize()


def _make_culture(rng: random.Random, cid: int, taken: set[str]) -> Culture:
    """Each culture draws a small onset/vowel/coda inventory, so its names share a recognisable sound."""
    onsets = rng.sample(ONSETS, 7)
    vowels = rng.sample(VOWELS, 4)
    codas = rng.sample(CODAS, 5)
    syllables = tuple(
        sorted({rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(16)})
    )
    name = ""
    while not name or name in taken:
        name = _word(rng, syllables, rng.choice([1, 1, 2])) + rng.choice(CULTURE_SUFFIXES)
    taken.add(name)
    cities = tuple(_word(rng, syllables, 1) + rng.choice(CITY_SUFFIXES) for _ in range(3))
    return Culture(cid, name, syllables, cities)


def _person_name(rng: random.Random, culture: Culture) -> str:
    given = _word(rng, culture.syllables, rng.choice([1, 1, 2]))
    family = _word(rng, culture.syllables, rng.choice([1, 2, 2, 3]))
    return f"{given} {family}"


def _profession(rng: random.Random) -> str:
    return rng.choice(MAGICAL_PROFESSIONS if rng.random() < 0.45 else MUNDANE_PROFESSIONS)


def _simulate_events(rng: random.Random, cultures: list[Culture], years: int) -> list[Event]:
    """Draw each year's local events per culture and shared events per pair of cultures."""
    events: list[Event] = []
    n = len(cultures)
    for year in range(years):
        for c in range(n):
            if rng.random() < 0.12:
                kind = rng.choices(LOCAL_KINDS, LOCAL_WEIGHTS)[0]
                detail = {"plague": PLAGUES, "discovery": DISCOVERIES, "tome": TOMES}.get(kind)
                city = rng.choice(cultures[c].cities)
                events.append(
                    Event(len(events), year, kind, (c,), detail=rng.choice(detail) if detail else city)
                )
        for a in range(n):
            for b in range(a + 1, n):
                if rng.random() < 0.018:
                    kind = rng.choices(SHARED_KINDS, SHARED_WEIGHTS)[0]
                    pair = (a, b) if rng.random() < 0.5 else (b, a)
                    if kind == "war":
                        events.append(
                            Event(
                                len(events), year, kind, pair, winner=rng.choice(pair),
                                cause=rng.choice(WAR_CAUSES), detail=rng.choice(VICTORY_REASONS),
                            )
                        )  # fmt: skip
                    else:
                        events.append(Event(len(events), year, kind, pair))
    return events


def _pick_parent(
    rng: random.Random, pool: list[Character], sex: str, culture: int, birth: int
) -> Character | None:
    """An earlier character of the given sex, 16-45 years older and alive at the birth; same culture 90%."""
    same = rng.random() < 0.9
    cands = [
        p
        for p in pool
        if p.sex == sex
        and birth - 45 <= p.birth <= birth - 16
        and (p.death is None or p.death >= birth)
        and (p.culture == culture) == same
    ]
    return rng.choice(cands) if cands else None


def _life_events(
    rng: random.Random, ch: Character, world_cultures: list[Culture], years: int
) -> list[LifeEvent]:
    end = ch.death if ch.death is not None else years - 1
    out: list[LifeEvent] = []
    specs = [
        ("apprenticed", 10, 17, ch.profession),
        ("masterwork", 25, 60, rng.choice(WORKS)),
        ("journey", 18, 50, str(rng.choice([c.id for c in world_cultures if c.id != ch.culture]))),
        ("honour", 30, 70, rng.choice(world_cultures[ch.culture].cities)),
    ]
    for kind, lo, hi, detail in specs:
        year = ch.birth + rng.randint(lo, hi)
        if year <= end and rng.random() < 0.7:
            out.append(LifeEvent(year, kind, detail))
    return sorted(out, key=lambda e: e.year)


def simulate_world(seed: int, n_cultures: int = 8, n_characters: int = 400, years: int = 120) -> World:
    """Build a consistent world: cultures, their timeline (years 0..years-1), and a population whose parents
    are earlier characters where any fit (otherwise invented ancestors)."""
    rng = random.Random(seed)
    taken: set[str] = set()
    cultures = [_make_culture(rng, i, taken) for i in range(n_cultures)]
    world_name = _word(rng, cultures[0].syllables, 1) + rng.choice(WORLD_SUFFIXES)
    events = _simulate_events(rng, cultures, years)
    births = sorted(rng.randint(0, years - 5) for _ in range(n_characters))
    characters: list[Character] = []
    for cid, birth in enumerate(births):
        culture = rng.randrange(n_cultures)
        lifespan = rng.randint(30, 95)
        death = birth + lifespan if birth + lifespan < years else None
        parents = []
        for psex in ("male", "female"):
            p = _pick_parent(rng, characters, psex, culture, birth)
            if p is not None:
                parents.append(Parent(p.name, p.profession, p.culture, p.id))
            else:
                parents.append(Parent(_person_name(rng, cultures[culture]), _profession(rng), culture, None))
        given = _person_name(rng, cultures[culture]).split()[0]
        ch = Character(
            id=cid,
            name=f"{given} {parents[0].name.split()[-1]}",  # family name from the father
            culture=culture,
            sex=rng.choice(["male", "female"]),
            birth=birth,
            death=death,
            profession=_profession(rng),
            traits=tuple(rng.sample(range(len(TRAITS)), rng.choice([2, 3]))),
            parents=(parents[0], parents[1]),
        )
        ch.life_events = _life_events(rng, ch, cultures, years)
        characters.append(ch)
    return World(seed, world_name, years, cultures, events, characters)


# --- rendering ----------------------------------------------------------------------------------------


def _pron(ch: Character) -> dict[str, str]:
    male = ch.sex == "male"
    return {"he": "he" if male else "she", "him": "him" if male else "her", "his": "his" if male else "her"}


def _article(word: str) -> str:
    return ("an " if word[0].lower() in "aeiou" else "a ") + word


def _age_phrase(rng: random.Random, ch: Character, year: int) -> str:
    """How old the character was, in words that tests can parse back ("only a year old", "aged 7")."""
    age, he, his = year - ch.birth, _pron(ch)["he"], _pron(ch)["his"]
    if age == 0:
        return f"the very year of {his} birth"
    if age == 1:
        return f"when {he} was only a year old"
    if age < 13:
        return rng.choice([f"when {he} was only {age} years old", f"at the tender age of {age}"])
    return rng.choice([f"when {he} was {age} years old", f"at the age of {age}", f"aged {age}"])


def _event_sentence(rng: random.Random, world: World, ch: Character, e: Event) -> str:
    """One sentence that states the event's year, the character's age then, and (for wars) the winner."""
    own = world.cultures[ch.culture].name
    year, age = e.year, _age_phrase(rng, ch, e.year)
    when = rng.choice([f"In the year {year}, {age}, ", f"{age[0].upper() + age[1:]}, in the year {year}, "])
    other = world.cultures[next((c for c in e.cultures if c != ch.culture), ch.culture)].name
    k, d = e.kind, e.detail
    options: dict[str, list[str]] = {
        "famine": [f"famine struck the {own}", f"a great famine emptied the granaries of the {own}"],
        "drought": [f"a drought withered the fields around {d}", f"the rains failed and drought gripped {d}"],
        "well": [
            f"the great well of {d} dried up",
            f"the local well of {d} ran dry, leaving the town thirsty",
        ],
        "plague": [f"{d} swept through the {own}", f"an outbreak of {d} killed many of the {own}"],
        "discovery": [f"the {own} discovered {d}", f"explorers of the {own} found {d}"],
        "tome": [
            f"a public reading from the forbidden tome {d} plunged the {own} into chaos",
            f"scholars of the {own} dared to read aloud from {d}, and strange misfortunes followed",
        ],
        "flood": [
            f"the river burst its banks and flooded {d}",
            f"a great flood drowned the lower streets of {d}",
        ],
        "festival": [
            f"a Festival of Lanterns was held in {d}",
            f"{d} hosted a festival that lasted a month",
        ],
        "coronation": [f"a new monarch was crowned in {d}", f"the {own} crowned a new ruler at {d}"],
        "trade": [
            f"the {own} formed a trade alliance with the {other}",
            f"a trade alliance was sealed between the {own} and the {other}",
        ],
        "marriage": [
            f"a member of the {own} royalty married into the royal family of the {other}",
            f"a royal marriage joined the houses of the {own} and the {other}",
        ],
    }
    if k == "war":
        win, lose = (
            world.cultures[e.winner].name,
            world.cultures[[c for c in e.cultures if c != e.winner][0]].name,
        )
        body = rng.choice(
            [
                f"war broke out between the {own} and the {other} over {e.cause}, and the {win} "
                f"prevailed thanks to {e.detail}",
                f"the {own} went to war with the {other} over {e.cause}; {e.detail} won it for the {win}",
                f"the {win} defeated the {lose} in a war fought over {e.cause}, owing to {e.detail}",
            ]
        )
    else:
        body = rng.choice(options[k])
    return when + body + "."


def _life_sentence(rng: random.Random, world: World, ch: Character, le: LifeEvent) -> str:
    p = _pron(ch)
    age = _age_phrase(rng, ch, le.year)
    first = ch.first_name
    if le.kind == "apprenticed":
        body = rng.choice(
            [
                f"{first} was apprenticed to {_article(le.detail)}",
                f"{first} began training as {_article(le.detail)}",
            ]
        )
    elif le.kind == "masterwork":
        body = rng.choice(
            [f"{first} completed {le.detail}", f"{p['he']} finished {p['his']} life's work, {le.detail}"]
        )
    elif le.kind == "journey":
        other = world.cultures[int(le.detail)].name
        body = rng.choice(
            [f"{first} travelled to the lands of the {other}", f"{p['he']} spent a season among the {other}"]
        )
    else:
        body = rng.choice(
            [f"{first} was named a citizen of honour of {le.detail}", f"{le.detail} honoured {first}"]
        )
    return f"In the year {le.year}, {age}, {body}."


def _parent_phrase(world: World, ch: Character, parent: Parent) -> str:
    foreign = "" if parent.culture == ch.culture else f" of the {world.cultures[parent.culture].name}"
    return f"{parent.name}, {_article(parent.profession)}{foreign}"


def render_entry(world: World, character: Character) -> str:
    """Render one biography (several paragraphs) of ``character``; its wording is drawn from an RNG seeded
    by (world seed, character id), its facts only from the world."""
    ch = character
    rng = random.Random(f"{world.seed}:{ch.id}")
    p = _pron(ch)
    first, culture = ch.first_name, world.cultures[ch.culture]
    father, mother = (_parent_phrase(world, ch, x) for x in ch.parents)
    prof = _article(ch.profession)
    intro = rng.choice(
        [
            f"{ch.name} was a prominent figure in the {culture.name} culture of {world.name}.",
            f"{ch.name} was {prof} of the {culture.name} people of {world.name}.",
            f"Among the {culture.name} of {world.name}, few were as talked about as {ch.name}.",
        ]
    )
    born = rng.choice(
        [
            f"Born in the year {ch.birth} to parents {father}, and {mother}, {first} grew up in "
            f"{rng.choice(culture.cities)}.",
            f"{p['he'].capitalize()} was born in the year {ch.birth}, the child of {father}, and {mother}.",
        ]
    )
    work = rng.choice(
        [
            f"In time {p['he']} became {prof}, a calling that shaped the rest of {p['his']} life.",
            f"{first} made a living as {prof}.",
        ]
    )
    traits = [TRAITS[i] for i in ch.traits]
    adjs = ", ".join(t[0] for t in traits[:-1]) + f" and {traits[-1][0]}"
    trait_par = [
        rng.choice(
            [
                f"Those who knew {first} described {p['him']} as {adjs}.",
                f"{first} was {adjs}, and these traits marked everything {p['he']} did.",
            ]
        )
    ]
    for adj, noun, act in traits:
        trait_par.append(
            rng.choice(
                [
                    f"{p['his'].capitalize()} {noun} was well known: {p['he']} {act}.",
                    f"As a sign of {p['his']} {noun}, people recalled that {p['he']} {act}.",
                    f"Being {adj}, {p['he']} {act}.",
                ]
            )
        )
    events = world.lifetime_events(ch)
    if len(events) > 9:
        events = sorted(rng.sample(events, 9), key=lambda e: (e.year, e.id))
    # world events and personal events in one chronological story, split at coming of age
    story = [(e.year, 0, e.id, _event_sentence(rng, world, ch, e)) for e in events]
    story += [(le.year, 1, i, _life_sentence(rng, world, ch, le)) for i, le in enumerate(ch.life_events)]
    story.sort()
    young = [s for year, *_, s in story if year - ch.birth < 18]
    adult = [s for year, *_, s in story if year - ch.birth >= 18]
    paragraphs = [" ".join([intro, born, work]), " ".join(trait_par)]
    if young:
        paragraphs.append(" ".join(young))
    if adult:
        paragraphs.append(" ".join(adult))
    if not events:
        paragraphs.append(f"{first} lived through a quiet time in the history of the {culture.name}.")
    personal: list[str] = []
    kids = world.children(ch)
    if kids:
        names = [k.name for k in kids]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
        personal.append(f"{first} had {len(kids)} {'child' if len(kids) == 1 else 'children'}: {listed}.")
    if ch.death is not None:
        personal.append(
            rng.choice(
                [
                    f"{first} died in the year {ch.death} at the age of {ch.death - ch.birth}.",
                    f"{p['he'].capitalize()} died in the year {ch.death}, aged {ch.death - ch.birth}.",
                ]
            )
        )
    else:
        personal.append(
            rng.choice([f"{first} is still living.", f"{p['he'].capitalize()} is alive to this day."])
        )
    paragraphs.append(" ".join(personal))
    return "\n\n".join(paragraphs)


# --- corpus ---------------------------------------------------------------------------------------------


def _entry_order(world: World) -> list[Character]:
    """A fixed, seed-dependent shuffle of the population, so the first N entries are a sample of all eras."""
    chars = list(world.characters)
    random.Random(f"{world.seed}:order").shuffle(chars)
    return chars


def n_characters_for(n_entries: int) -> int:
    """Population size used for a corpus: the default, or more if more entries are asked for."""
    return max(DEFAULT_N_CHARACTERS, n_entries)


def generate_corpus(seed: int, n_entries: int) -> str:
    """``n_entries`` biographies: a title line (the name), then the paragraphs; blank lines between."""
    world = simulate_world(seed, n_characters=n_characters_for(n_entries))
    entries = [f"{ch.name}\n\n{render_entry(world, ch)}" for ch in _entry_order(world)[:n_entries]]
    return "\n\n".join(entries) + "\n"


def write_corpus(path: str | Path, seed: int, n_entries: int) -> dict:
    """Write the corpus atomically, then a ``<path>.json`` sidecar recording how it was made."""
    text = generate_corpus(seed, n_entries)
    data = text.encode("utf-8")
    write_text(text, path)
    meta = {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "seed": seed,
        "n_entries": n_entries,
        "n_characters": n_characters_for(n_entries),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    write_json(meta, f"{path}.json")
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Generate the fictional encyclopedia corpus.")
    ap.add_argument("out", type=Path, help="output text file (a <out>.json sidecar is written next to it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--entries", type=int, default=300)
    args = ap.parse_args(argv)
    meta = write_corpus(args.out, args.seed, args.entries)
    print(f"{args.out}: {meta['n_entries']} entries, {meta['bytes']} bytes, sha256 {meta['sha256']}")


if __name__ == "__main__":
    main()
