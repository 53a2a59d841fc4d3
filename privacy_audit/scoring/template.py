"""The text a canary template can spell from some point on, as a small automaton read character by character: template
characters, a charset per secret character, a trie per word-list slot. One reader of templates for the searches
(`search.align` takes its slots' places, `lattice.TokenLattice` walks it token by token, `boundaries` asks which
tokens it can hold), and the probe secrets a token layout is checked on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.canary import PLACEHOLDER
from privacy_audit.canaries.spaces import JOIN, CharsetSpace, ProductSpace, WordSpace

MAX_WORD_PROBES = 2_000
# An automaton state: (item, trie node); a text's state is the set of those it can be in.
State = tuple[int, int]
States = frozenset[State]


class WordTrie:
    """The words of a list, character by character; `below[n]`: how many words end strictly under node n."""

    def __init__(self, words: Sequence[str]) -> None:
        self.children: list[dict[str, int]] = [{}]
        self.word: list[bool] = [False]
        for w in words:
            n = 0
            for c in w:
                if c not in self.children[n]:
                    self.children[n][c] = len(self.children)
                    self.children.append({})
                    self.word.append(False)
                n = self.children[n][c]
            self.word[n] = True
        self.below = [0] * len(self.children)
        for n in range(len(self.children) - 1, -1, -1):  # children are numbered after their parents
            self.below[n] = sum(self.below[k] + self.word[k] for k in self.children[n].values())


@dataclass(frozen=True)
class Item:
    """One step of the text after the root: a template character (`text`), a secret character (`alphabet`, at
    `slot`, `at`) or a word-list slot (`trie`)."""

    text: str = ""
    alphabet: str = ""
    trie: WordTrie | None = None
    slot: int = -1
    at: int = 0


class Automaton:
    """The texts a template can spell from some point on, read character by character: `items` (template characters,
    secret characters, word-list slots); a state is (item, trie node), a text's state the set of those it can be in.
    Sizes and nesting depths are computed once per state (set)."""

    def __init__(self, items: Sequence[Item], slot_count: int) -> None:
        self.items, self.slot_count = tuple(items), slot_count
        self.final: State = (len(self.items), 0)
        self.nested = any(item.trie is not None for item in self.items)
        self._sizes: dict[State, float] = {}
        self._depths: dict[States, float] = {}

    def moves(self, state: State, c: str) -> list[State]:
        i, n = state
        if i == len(self.items):
            return []
        item = self.items[i]
        if item.trie is None:
            return [(i + 1, 0)] if c == item.text or c in item.alphabet else []
        k = item.trie.children[n].get(c)
        if k is None:
            return []
        return [(i, k), (i + 1, 0)] if item.trie.word[k] else [(i, k)]

    def after(self, states: States, text: str) -> States:
        """The states after reading `text` (empty where no text of the template goes on so)."""
        for c in text:
            states = frozenset(s for state in states for s in self.moves(state, c))
            if not states:
                break
        return states

    def first_chars(self, i: int, n: int) -> Iterator[str]:
        item = self.items[i]
        if item.trie is not None:
            yield from item.trie.children[n]
        else:
            yield from item.text or item.alphabet

    def chars(self) -> set[str]:
        """Every character a text of the automaton can hold."""
        out = {it.text for it in self.items if it.text} | {c for it in self.items for c in it.alphabet}
        return out | {c for it in self.items if it.trie is not None for kids in it.trie.children for c in kids}

    def readable(self, vocabulary: dict[int, str]) -> dict[int, str]:
        """The tokens of a vocabulary made only of characters a text of the automaton can hold."""
        chars = self.chars()
        return {t: s for t, s in vocabulary.items() if s and set(s) <= chars}

    def firsts(self, states: States) -> set[str]:
        """The characters readable next from `states`."""
        return {c for i, n in states if i < len(self.items) for c in self.first_chars(i, n)}

    def size(self, state: State) -> float:
        """How many secrets complete from one state."""
        if state not in self._sizes:
            i, n = state
            if i == len(self.items):
                out = 1.0
            else:
                item = self.items[i]
                rest = self.size((i + 1, 0))
                out = item.trie.below[n] * rest if item.trie is not None else max(1, len(item.alphabet)) * rest
            self._sizes[state] = out
        return self._sizes[state]

    def depth(self, states: States) -> float:
        """The longest chain of texts accepted from `states`, each a prefix of the next: 1 where it accepts, plus the
        deepest set of states one character on (exact; without recursion, as a text may be long). Only a word list's
        words can nest: else every text is alike long."""
        if not self.nested:
            return 1.0
        memo, stack = self._depths, [states]
        while stack:
            top = stack[-1]
            if top in memo:
                stack.pop()
                continue
            after = {self.after(top, c) for c in self.firsts(top)} - {frozenset()}
            todo = [s for s in after if s not in memo]
            if todo:
                stack.extend(todo)
                continue
            memo[top] = float(self.final in top) + max((memo[s] for s in after), default=0.0)
            stack.pop()
        return memo[states]


def read_template(canary_set: CanarySet, lead: str = "") -> Automaton | str:
    """The automaton reading `lead` (a character an item), then the template after its prefix, each slot as its space
    fills it; or why the space cannot be read so (a slot used twice, a derived value, a slot of another kind)."""
    space = canary_set.secret_space
    parts = space.parts if isinstance(space, ProductSpace) else (("secret", space),)
    names = [n for n, _ in parts]
    rest = canary_set.template[len(canary_set.prefix) :]
    found = [m.group(1) for m in PLACEHOLDER.finditer(rest)]
    if canary_set.derived or sorted(found) != sorted(names):
        return "best-first search not applicable: a slot is used twice or a value is derived from the slots"
    items = [Item(text=c) for c in lead]
    last = 0
    for m in PLACEHOLDER.finditer(rest):
        items += [Item(text=c) for c in rest[last : m.start()]]
        slot = names.index(m.group(1))
        sub = parts[slot][1]
        if isinstance(sub, CharsetSpace):
            items += [Item(alphabet=sub.alphabet, slot=slot, at=k) for k in range(sub.length)]
        elif isinstance(sub, WordSpace):
            items.append(Item(trie=WordTrie(sub.words), slot=slot))
        else:
            return f"best-first search not applicable: slot {m.group(1)} is neither characters nor a word list"
        last = m.end()
    items += [Item(text=c) for c in rest[last:]]
    return Automaton(items, len(parts))


def probe_secrets(canary_set: CanarySet, *, sample: int = 256, seed: int = 0) -> list[str]:
    """The secrets a token layout is checked on: every symbol at every position and every word of each list (up to
    `MAX_WORD_PROBES`, drawn with the seed) in the first canary, every canary, and `sample` random secrets."""
    space = canary_set.secret_space
    rng = np.random.default_rng(seed)
    parts = space.parts if isinstance(space, ProductSpace) else (("secret", space),)
    values = list(space.values(canary_set.canaries[0].secret).values())
    probes = []
    for slot, (_, sub) in enumerate(parts):
        if isinstance(sub, CharsetSpace):
            options = [
                values[slot][:at] + ch + values[slot][at + 1 :] for at in range(sub.length) for ch in sub.alphabet
            ]
        else:
            options = sub.sample(min(sub.size, MAX_WORD_PROBES), rng)
        for option in options:
            changed = list(values)
            changed[slot] = option
            probes.append(JOIN.join(changed))
    return probes + [c.secret for c in canary_set.canaries] + space.sample(min(sample, space.size), rng)
