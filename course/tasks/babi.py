"""bAbI-style stories (Weston et al., 2015) for tasks 1-3: one, two and three supporting facts.

A simulated world of people, rooms and objects produces statements ("mary went to the kitchen",
"john picked up the apple", "john dropped the apple") and, every few statements, a question
whose answer the simulation knows, together with the statements that prove it:

- task 1, "where is mary": the person's last move (one supporting fact);
- task 2, "where is the apple": who last took or left it, and where that person was then (two);
- task 3, "where was the apple before the office": the statements that took the object to its
  previous and current places (three).

Each example is one question with the story so far (statements only, oldest first), as
end-to-end memory networks read it: ``{"task", "story": [[tokens], ...], "question": [tokens],
"answer": word, "supporting": [story indices]}``. Punctuation is dropped; words are lower case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

PEOPLE = ("mary", "john", "sandra", "daniel")
ROOMS = ("bathroom", "hallway", "garden", "office", "kitchen", "bedroom")
OBJECTS = ("football", "apple", "milk")
MOVES = ("went to", "moved to", "journeyed to", "travelled to")
TAKES = ("picked up", "got", "grabbed", "took")
DROPS = ("dropped", "discarded", "put down", "left")
MAX_STATEMENTS = {1: 12, 2: 20, 3: 30}


@dataclass
class World:
    """Where everyone is, who holds what, and which statement established each fact."""

    story: list[list[str]] = field(default_factory=list)
    place: dict[str, tuple[str, int]] = field(default_factory=dict)    # person -> (room, fact)
    holder: dict[str, tuple[str, int]] = field(default_factory=dict)   # object -> (person, fact)
    dropped: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # object -> (room, drop, move)
    # object -> [(room, facts that put it there)], a new entry each time it changes room
    trail: dict[str, list[tuple[str, list[int]]]] = field(default_factory=dict)

    def say(self, text: str) -> int:
        self.story.append(text.split())
        return len(self.story) - 1

    def move(self, rng: random.Random, person: str) -> None:
        room = rng.choice([r for r in ROOMS if r != self.place.get(person, ("", 0))[0]])
        fact = self.say(f"{person} {rng.choice(MOVES)} the {room}")
        self.place[person] = (room, fact)
        for obj, (holder, take) in self.holder.items():
            if holder == person:
                self.trail.setdefault(obj, []).append((room, sorted({take, fact})))

    def take(self, rng: random.Random, person: str, obj: str) -> None:
        fact = self.say(f"{person} {rng.choice(TAKES)} the {obj}")
        self.holder[obj] = (person, fact)
        self.dropped.pop(obj, None)
        room, moved = self.place[person]
        trail = self.trail.setdefault(obj, [])
        if not trail or trail[-1][0] != room:
            trail.append((room, sorted({moved, fact})))

    def drop(self, rng: random.Random, person: str, obj: str) -> None:
        fact = self.say(f"{person} {rng.choice(DROPS)} the {obj}")
        del self.holder[obj]
        self.dropped[obj] = (self.place[person][0], fact, self.place[person][1])


def step(rng: random.Random, world: World, task: int) -> None:
    """One random statement that keeps the world consistent."""
    person = rng.choice(PEOPLE)
    if task == 1 or person not in world.place or rng.random() < 0.5:
        world.move(rng, person)
        return
    held = [o for o, (p, _) in world.holder.items() if p == person]
    free = [o for o in OBJECTS if o not in world.holder]
    if held and (not free or rng.random() < 0.4):
        world.drop(rng, person, rng.choice(held))
    elif free:
        world.take(rng, person, rng.choice(free))
    else:
        world.move(rng, person)


def question(rng: random.Random, world: World, task: int) -> tuple[list[str], str, list[int]] | None:
    """A question the story so far answers, with its answer and supporting facts (or None)."""
    if task == 1:
        person = rng.choice(sorted(world.place))
        room, fact = world.place[person]
        return f"where is {person}".split(), room, [fact]
    if task == 2:
        candidates = sorted(set(world.holder) | set(world.dropped))
        if not candidates:
            return None
        obj = rng.choice(candidates)
        if obj in world.holder:
            person, take = world.holder[obj]
            room, moved = world.place[person]
            return f"where is the {obj}".split(), room, sorted({take, moved})
        room, drop, moved = world.dropped[obj]
        return f"where is the {obj}".split(), room, sorted({drop, moved})
    # carried by one person from the previous room to the current one: exactly three facts
    # (how the carrier reached the first room or took the object there, the take, the last move)
    candidates = sorted(o for o, trail in world.trail.items()
                        if len(trail) >= 2 and len(set(trail[-2][1]) | set(trail[-1][1])) == 3)
    if not candidates:
        return None
    obj = rng.choice(candidates)
    (before, first), (now, second) = world.trail[obj][-2:]
    return f"where was the {obj} before the {now}".split(), before, sorted(set(first) | set(second))


def make_story(rng: random.Random, task: int) -> list[dict]:
    """One story with a question after every two statements (when one is answerable)."""
    world = World()
    examples = []
    while len(world.story) < MAX_STATEMENTS[task]:
        for _ in range(2):
            step(rng, world, task)
        asked = question(rng, world, task)
        if asked is not None:
            q, answer, supporting = asked
            examples.append({"task": task, "story": [list(s) for s in world.story], "question": q,
                             "answer": answer, "supporting": supporting})
    return examples


def generate_task(task: int, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    examples: list[dict] = []
    while len(examples) < n:
        examples += make_story(rng, task)
    return examples[:n]


def generate_1(n: int, seed: int) -> list[dict]:
    """Task 1, single supporting fact."""
    return generate_task(1, n, seed)


def generate_2(n: int, seed: int) -> list[dict]:
    """Task 2, two supporting facts."""
    return generate_task(2, n, seed)


def generate_3(n: int, seed: int) -> list[dict]:
    """Task 3, three supporting facts."""
    return generate_task(3, n, seed)
