"""Best-first search over any tokenizer: the space's texts as paths of whole tokens, however a tokenizer groups them.

Where a token may cover several secret characters (GPT-2's digit pairs, Llama 3's digit groups, a sentencepiece
piece of a name), or end one slot and begin the template text after it, the search walks a lazy trie of every token
sequence that spells some text of the space. The text after the root is read by a small automaton (template
characters, a charset per secret character, a trie per word-list slot); from each of its states, the tokens whose
text it accepts are found once from the vocabulary, without enumerating the space. A secret is reached on every
path that spells it; the path that is its canonical tokenization (checked by tokenizing it with the context, as the
scorer does) gives its score, and the others are passed over. The certified bounds stay valid: distinct complete
paths are disjoint events under the model, so the secrets whose canonical path runs under an open node have
probabilities summing to at most that node's (`bounds.certified_ranks`); the other paths only add mass to the bounds.

Tokens that end before the template prefix does are not part of a secret's score (as in `ScoredContinuations.totals`);
a node that has none of the score yet is bounded by its size alone. Like `search.align`, the tokens before the first
secret character (the root) and the vocabulary's texts are checked on every canary, a sample of secrets, every
symbol at every position and every word of each list (up to `MAX_WORD_PROBES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.canary import PLACEHOLDER
from privacy_audit.canaries.spaces import JOIN, CharsetSpace, ProductSpace, WordSpace
from privacy_audit.errors import ModelError
from privacy_audit.models.context import Context
from privacy_audit.scoring.walk import Children

MAX_WORD_PROBES = 2_000
# An automaton state: (item, trie node); a node's state is the set of those its text can be in.
State = tuple[int, int]
States = frozenset[State]
# A search node: characters spelt after the root, the automaton's states there, the tokens.
Node = tuple[int, States, tuple[int, ...]]
# What is readable from a set of states: the tokens, the states after each, their lengths and sizes.
Step = tuple[list[int], list[States], np.ndarray, np.ndarray]


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


@dataclass
class TokenLattice:
    """The text after the root tokens (`prefix`) as an automaton over `items`; tokens (`texts`) ending after
    `counted_from` characters count in a secret's score; `canonical(secret)` is its tokens after the head."""

    prefix: tuple[int, ...]
    items: tuple[Item, ...]
    slot_count: int
    counted_from: int
    texts: dict[int, str]
    canonical: Callable[[str], list[int]]
    by_first: dict[str, list[int]] = field(default_factory=dict)
    _next: dict[States, Step] = field(default_factory=dict)
    _sizes: dict[State, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tok, text in self.texts.items():
            self.by_first.setdefault(text[0], []).append(tok)

    def _moves(self, state: State, c: str) -> list[State]:
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

    def _after(self, states: States, text: str) -> States:
        for c in text:
            states = frozenset(s for state in states for s in self._moves(state, c))
            if not states:
                break
        return states

    def _step(self, states: States) -> Step:
        """The tokens readable from `states`, the states after each, each token's length in characters and how many
        secrets complete after it (computed once per set of states)."""
        if states not in self._next:
            firsts = {c for i, n in states if i < len(self.items) for c in self._first_chars(i, n)}
            toks, after = [], []
            for c in firsts:
                for tok in self.by_first.get(c, ()):
                    reached = self._after(states, self.texts[tok])
                    if reached:
                        toks.append(tok)
                        after.append(reached)
            lengths = np.array([len(self.texts[t]) for t in toks], dtype=np.int64)
            sizes = np.array([sum(self._size(x) for x in s) for s in after], dtype=np.float64)
            self._next[states] = (toks, after, lengths, sizes)
        return self._next[states]

    def _first_chars(self, i: int, n: int) -> Iterator[str]:
        item = self.items[i]
        if item.trie is not None:
            yield from item.trie.children[n]
        else:
            yield from item.text or item.alphabet

    def root(self) -> Node:
        return (0, frozenset({(0, 0)}), ())

    def key(self, node: Node) -> States:
        return node[1]

    def next_tokens(self, key: States) -> Sequence[int]:
        return self._step(key)[0]

    def children(self, node: Node, row: np.ndarray) -> Children:
        """Each readable token's child, with the log-prob it adds to the score (0 before the score starts); a child
        that both ends the text and goes on is built as two nodes, the finished one and the rest."""
        p, states, ids = node
        toks, after, lengths, sizes = self._step(states)
        started = p + lengths > self.counted_from
        final = (len(self.items), 0)

        def build(i: int) -> list[Node]:
            q, tok, reached = p + int(lengths[i]), toks[i], after[i]
            if final in reached and len(reached) > 1:
                return [(q, frozenset({final}), ids + (tok,)), (q, reached - {final}, ids + (tok,))]
            return [(q, reached, ids + (tok,))]

        return Children(np.where(started, row, 0.0), sizes, started, build)

    def path(self, node: Node) -> list[int]:
        return [*self.prefix, *node[2]]

    def complete(self, node: Node) -> bool:
        return (len(self.items), 0) in node[1]

    def secrets(self, node: Node) -> list[str]:
        """The secrets a complete node spells whose canonical tokens are its path (usually one, or none)."""
        text = "".join(self.texts[t] for t in node[2])
        return [s for s in self._parse(text, 0, 0, [[] for _ in range(self.slot_count)]) if
                self.canonical(s) == self.path(node)]

    def _parse(self, text: str, i: int, pos: int, values: list[list[str]]) -> Iterator[str]:
        """Every assignment of slot values that spells `text` from item i and character pos on."""
        if i == len(self.items):
            if pos == len(text):
                yield JOIN.join("".join(v) for v in values)
            return
        item = self.items[i]
        if item.trie is None:
            if pos < len(text) and (text[pos] == item.text or text[pos] in item.alphabet):
                if item.slot >= 0:
                    values[item.slot].append(text[pos])
                yield from self._parse(text, i + 1, pos + 1, values)
                if item.slot >= 0:
                    values[item.slot].pop()
            return
        n, end = 0, pos
        while end < len(text) and text[end] in item.trie.children[n]:
            n = item.trie.children[n][text[end]]
            end += 1
            if item.trie.word[n]:
                values[item.slot].append(text[pos:end])
                yield from self._parse(text, i + 1, end, values)
                values[item.slot].pop()

    def _size(self, state: State) -> float:
        """How many secrets complete from one automaton state."""
        if state not in self._sizes:
            i, n = state
            if i == len(self.items):
                out = 1.0
            else:
                item = self.items[i]
                rest = self._size((i + 1, 0))
                out = item.trie.below[n] * rest if item.trie is not None else max(1, len(item.alphabet)) * rest
            self._sizes[state] = out
        return self._sizes[state]

    def size(self, node: Node) -> float:
        """How many secrets a node's completions can spell."""
        return float(sum(self._size(s) for s in node[1]))

    def bound(self, node: Node, score: float) -> float:
        """The log-prob that bounds the scores of a node's secrets together: its score, once it has started."""
        return score if node[0] > self.counted_from else np.inf


def _items(canary_set: CanarySet, start: int, root_end: int, lead: str) -> tuple[list[Item], int] | str:
    """The automaton's items from the root's end: `lead` (the text from there to the template prefix's end), then
    the template after its prefix; or why the space cannot be read so."""
    space = canary_set.secret_space
    parts = space.parts if isinstance(space, ProductSpace) else (("secret", space),)
    names = [n for n, _ in parts]
    rest = canary_set.template[start:]
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
    return items, len(parts)


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


def token_lattice(context: Context, canary_set: CanarySet) -> TokenLattice | str:
    """The lattice of the template's tokens after `context`, or why it cannot be built (the reason, a str)."""
    try:
        vocabulary = context.vocabulary()
    except ModelError as e:
        return f"best-first search not run: {e}"
    texts_of = [canary_set.fill(s) for s in probe_secrets(canary_set)]
    ids, ends = context.tokenize(texts_of)
    start = len(canary_set.prefix)
    k = 0
    while all(len(r) > k and r[k] == ids[0][k] and e[k] == ends[0][k] and e[k] <= start for r, e in zip(ids, ends)):
        k += 1
    tail = context.boundary.tail
    root_end = ends[0][k - 1] if k else -len(tail)
    items = _items(canary_set, start, root_end, (tail + canary_set.prefix)[root_end + len(tail) :])
    if isinstance(items, str):
        return items
    chars = {it.text for it in items[0]} | {c for it in items[0] for c in it.alphabet}
    chars |= {c for it in items[0] if it.trie is not None for kids in it.trie.children for c in kids}
    texts = {t: s for t, s in vocabulary.items() if s and set(s) <= chars}

    def canonical(secret: str) -> list[int]:
        return context.tokenize([canary_set.fill(secret)])[0][0]

    lattice = TokenLattice(tuple(ids[0][:k]), tuple(items[0]), items[1], start - root_end, texts, canonical)
    for text, row in zip(texts_of, ids):
        if "".join(texts.get(t, "\0") for t in row[k:]) != (tail + text)[root_end + len(tail) :]:
            return "best-first search not run: the tokenizer spells a secret with a token its vocabulary does not list"
    return lattice
