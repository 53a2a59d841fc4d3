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
a node that has none of the score yet is bounded by its size alone. The root (the tokens every secret's text begins
with) ends where the vocabulary lets no token cross (`boundaries.Crossings`); it and the vocabulary's texts are also
checked on every canary, a sample of secrets, every symbol at every position and every word of each list (up to
`template.MAX_WORD_PROBES`). Secrets nested in each other (one text a prefix of another) are counted by their
nesting depth (`Walk`), and where the tokenizer cuts digit runs into groups the paths it never makes are skipped
(`boundaries.DigitGroups`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from privacy_audit.canaries import CanarySet
from privacy_audit.canaries.spaces import JOIN
from privacy_audit.errors import ModelError
from privacy_audit.models.context import Context
from privacy_audit.scoring.boundaries import Crossings, DigitGroups, Group, digit_rule
from privacy_audit.scoring.template import Automaton, States, probe_secrets, read_template
from privacy_audit.scoring.walk import Children

# A search node: characters spelt after the root, the automaton's states there, the tokens, the digit group.
Node = tuple[int, States, tuple[int, ...], Group]
Key = tuple[States, Group]
# What is readable from a set of states: the tokens, the states after each, their lengths, sizes and nesting depths,
# and the digit group after each.
Step = tuple[list[int], list[States], np.ndarray, np.ndarray, np.ndarray, list[Group]]


@dataclass
class TokenLattice:
    """The text after the root tokens (`prefix`) read by `reader`; tokens (`texts`) ending after `counted_from`
    characters count in a secret's score; `canonical(secret)` is its tokens after the head. Where the tokenizer
    cuts digit runs into groups (`digits`), the tokens no group's canon allows are not walked; `group` is the digit
    group under way at the root."""

    prefix: tuple[int, ...]
    reader: Automaton
    counted_from: int
    texts: dict[int, str]
    canonical: Callable[[str], list[int]]
    digits: DigitGroups | None = None
    group: Group = None
    by_first: dict[str, list[int]] = field(default_factory=dict)
    _readable: dict[States, Step] = field(default_factory=dict)
    _next: dict[Key, Step] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tok, text in self.texts.items():
            self.by_first.setdefault(text[0], []).append(tok)

    def _read(self, states: States) -> Step:
        """The tokens readable from `states`, the states after each, each token's length in characters, how many
        secrets complete after it and their nesting depth (computed once per set of states)."""
        if states not in self._readable:
            reader, toks, after = self.reader, [], []
            for c in reader.firsts(states):
                for tok in self.by_first.get(c, ()):
                    reached = reader.after(states, self.texts[tok])
                    if reached:
                        toks.append(tok)
                        after.append(reached)
            lengths = np.array([len(self.texts[t]) for t in toks], dtype=np.int64)
            sizes = np.array([sum(reader.size(x) for x in s) for s in after], dtype=np.float64)
            depths = np.array([reader.depth(s) for s in after], dtype=np.float64)
            self._readable[states] = (toks, after, lengths, sizes, depths, [None] * len(toks))
        return self._readable[states]

    def _step(self, key: Key) -> Step:
        """What `_read` gives, less the tokens the digit groups exclude after the key's group, with the group after
        each (computed once per key)."""
        states, group = key
        if self.digits is None:
            return self._read(states)
        if key not in self._next:
            toks, after, lengths, sizes, depths, _ = self._read(states)
            keep, groups = [], []
            for i, tok in enumerate(toks):
                ok, then = self.digits.step(self.reader, group, self.texts[tok], tok, after[i])
                if ok:
                    keep.append(i)
                    groups.append(then)
            at = np.array(keep, dtype=np.int64)
            self._next[key] = ([toks[i] for i in keep], [after[i] for i in keep], lengths[at], sizes[at], depths[at],
                               groups)
        return self._next[key]

    def root(self) -> Node:
        return (0, frozenset({(0, 0)}), (), self.group)

    def key(self, node: Node) -> Key:
        return node[1], node[3]

    def next_tokens(self, key: Key) -> Sequence[int]:
        return self._step(key)[0]

    def children(self, node: Node, row: np.ndarray) -> Children:
        """Each readable token's child, with the log-prob it adds to the score (0 before the score starts); a child
        that both ends the text and goes on is built as two nodes, the finished one and the rest."""
        p, states, ids, group = node
        toks, after, lengths, sizes, depths, groups = self._step((states, group))
        started = p + lengths > self.counted_from
        final = self.reader.final

        def build(i: int) -> list[Node]:
            q, tok, reached, then = p + int(lengths[i]), toks[i], after[i], groups[i]
            if final in reached and len(reached) > 1:
                return [(q, frozenset({final}), ids + (tok,), then), (q, reached - {final}, ids + (tok,), then)]
            return [(q, reached, ids + (tok,), then)]

        return Children(np.where(started, row, 0.0), sizes, depths, started, build)

    def path(self, node: Node) -> list[int]:
        return [*self.prefix, *node[2]]

    def complete(self, node: Node) -> bool:
        return self.reader.final in node[1]

    def secrets(self, node: Node) -> list[str]:
        """The secrets a complete node spells whose canonical tokens are its path (usually one, or none)."""
        text = "".join(self.texts[t] for t in node[2])
        return [s for s in self._parse(text, 0, 0, [[] for _ in range(self.reader.slot_count)]) if
                self.canonical(s) == self.path(node)]

    def _parse(self, text: str, i: int, pos: int, values: list[list[str]]) -> Iterator[str]:
        """Every assignment of slot values that spells `text` from item i and character pos on."""
        if i == len(self.reader.items):
            if pos == len(text):
                yield JOIN.join("".join(v) for v in values)
            return
        item = self.reader.items[i]
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

    def size(self, node: Node) -> float:
        """How many secrets a node's completions can spell."""
        return float(sum(self.reader.size(s) for s in node[1]))

    def depth(self, node: Node) -> float:
        """The longest chain of secrets a node's completions spell, each text a prefix of the next."""
        return self.reader.depth(node[1])

    def bound(self, node: Node, score: float) -> float:
        """The log-prob that bounds the scores of a node's secrets together: its score, once it has started."""
        return score if node[0] > self.counted_from else np.inf


def token_lattice(context: Context, canary_set: CanarySet) -> TokenLattice | str:
    """The lattice of the template's tokens after `context`, or why it cannot be built (the reason, a str). Its root
    (the tokens every secret's text begins with) ends at the last point of the context's tail and the template's
    prefix that the vocabulary forbids any token to cross (`Crossings`), and every probed secret must begin so."""
    try:
        vocabulary = context.vocabulary()
    except ModelError as e:
        return f"best-first search not run: {e}"
    tail, start = context.boundary.tail, len(canary_set.prefix)
    whole = read_template(canary_set, tail + canary_set.prefix)
    if isinstance(whole, str):
        return whole
    texts_of = [canary_set.fill(s) for s in probe_secrets(canary_set)]
    ids, ends = context.tokenize(texts_of)
    texts, groups = whole.readable(vocabulary), digit_rule(context, whole)
    crossings = Crossings(whole, texts, groups)
    for point in range(len(tail) + start, -1, -1):  # point 0 (the head's end) is always a boundary
        k = None if point and crossings.crossed(point) else _shared(ids, ends, point - len(tail), -len(tail))
        if k is not None:
            break
    root_end = point - len(tail)
    reader = Automaton(whole.items[point:], whole.slot_count)

    def canonical(secret: str) -> list[int]:
        return context.tokenize([canary_set.fill(secret)])[0][0]

    digits, group = None, None
    if groups:
        strings = ["".join(d) for n in range(1, groups + 1) for d in itertools.product("0123456789", repeat=n)]
        rows, row_ends = context.tokenize(["\n" + s + "\n" for s in strings])
        digits = DigitGroups.of(groups, {s: tuple(t for t, e in zip(r, es) if 1 < e <= 1 + len(s))
                                         for s, r, es in zip(strings, rows, row_ends)})
        before = (tail + canary_set.prefix)[:point]
        run = len(before) - len(before.rstrip("0123456789"))
        # known where the run began in the text and the root ends between groups
        group = ("", ()) if run < len(before) and run % groups == 0 else None
    lattice = TokenLattice(tuple(ids[0][:k]), reader, start - root_end, texts, canonical, digits, group)
    for text, row in zip(texts_of, ids):
        if "".join(texts.get(t, "\0") for t in row[k:]) != (tail + text)[point:]:
            return "best-first search not run: the tokenizer spells a secret with a token its vocabulary does not list"
    return lattice


def _shared(ids: Sequence[Sequence[int]], ends: Sequence[Sequence[int]], end: int, first: int) -> int | None:
    """How many tokens every row has before a boundary at character `end` (rows begin at `first`), alike in all; None
    if some row has no boundary there or other tokens before it."""
    k = sum(1 for e in ends[0] if e <= end)
    if (ends[0][k - 1] if k else first) != end:
        return None
    return k if all(list(row[:k]) == list(ids[0][:k]) and list(e[:k]) == list(ends[0][:k])
                    for row, e in zip(ids, ends)) else None
