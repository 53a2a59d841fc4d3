"""What a tokenizer's vocabulary and rules say about where tokens can lie in a template's text, whatever the secret:
points no token can cross (`Crossings`, where a search may start and where a layout of one token per character is
sound), and the digit groups a pre-tokenizer cuts (`DigitGroups`: a path whose tokens read a group otherwise is never
canonical)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from privacy_audit.models.context import Context
from privacy_audit.models.pretokens import ASCII_DIGITS
from privacy_audit.scoring.template import Automaton, States

# The digit group under way where a text ends (its digits and tokens so far; ("", ()) between groups), or None where
# it is unknown (the run began before the text the search knows) or no digit rule applies.
Group = tuple[str, tuple[int, ...]] | None


class Crossings:
    """Where the vocabulary forces a token boundary whatever the secret: a point of the text that no token can cross
    (begin before and go on after, as some text of the template goes on). Every tokenization of every secret's
    text splits there, and what lies before is tokenized alike (BPE merges, a unigram model's best split and a
    longest match all act on either side alone when no token spans the point). Decided from the vocabulary (less
    the tokens the tokenizer's digit groups exclude anywhere: a digit with another character, more digits than a
    group), not from sampled secrets, which can miss the few secrets that a rare token joins to the template."""

    def __init__(self, reader: Automaton, vocabulary: dict[int, str], digit_groups: int | None = None) -> None:
        self.reader = reader
        self.by_two: dict[str, list[str]] = {}
        for text in set(reader.readable(vocabulary).values()):
            if len(text) > 1 and (digit_groups is None or _fits(text, digit_groups)):
                self.by_two.setdefault(text[:2], []).append(text)
        for texts in self.by_two.values():
            texts.sort(key=len, reverse=True)
        self.longest = max((len(t[0]) for t in self.by_two.values()), default=1)
        self._reach: dict[int, int] = {}

    def reach(self, at: int) -> int:
        """The length of the longest token that can begin at item `at` (1 where none of two characters or more)."""
        if at not in self._reach:
            reader, start, best = self.reader, frozenset({(at, 0)}), 1
            for first in reader.firsts(start):
                for second in reader.firsts(reader.after(start, first)):
                    for text in self.by_two.get(first + second, ()):
                        if len(text) <= best:
                            break
                        if reader.after(start, text):
                            best = len(text)
                            break
            self._reach[at] = best
        return self._reach[at]

    def crossed(self, point: int) -> bool:
        """Whether a token can cross the point before item `point` (items of one character each up to it)."""
        return any(at + self.reach(at) > point for at in range(max(0, point - self.longest + 1), point))


@dataclass(frozen=True)
class DigitGroups:
    """The tokenizer's digit rule (`Vocabulary.digit_groups`): every run of the digits 0-9 cut into groups of `size`
    from its left, no token holding a digit with another character, and each group tokenized on its own (`canon`:
    every digit string of up to `size` digits, tokenized). A path is canonical only if each group's tokens are its
    canon, so the search skips a token no group can begin so: one that crosses a group, or begins a group shorter
    than `size` where the text cannot end the run there (the 4 of an area code 409 read as 4|09)."""

    size: int
    canon: dict[str, tuple[int, ...]]
    starts: dict[tuple[int, ...], tuple[str, ...]]  # a group's first tokens -> the groups whose canon begins so

    @classmethod
    def of(cls, size: int, canon: dict[str, tuple[int, ...]]) -> DigitGroups:
        starts: dict[tuple[int, ...], list[str]] = {}
        for group, tokens in canon.items():
            for n in range(1, len(tokens) + 1):
                starts.setdefault(tokens[:n], []).append(group)
        return cls(size, canon, {k: tuple(v) for k, v in starts.items()})

    def step(self, reader: Automaton, group: Group, text: str, token: int, reached: States) -> tuple[bool, Group]:
        """Whether `token` (spelling `text`, reaching `reached`) can follow a path whose digit group is `group`, and
        the group after it."""
        digits = sum(c in ASCII_DIGITS for c in text)
        if 0 < digits < len(text):
            return False, None
        if digits == 0:  # the run ends: the group under way must be complete as it stands
            return group is None or not group[1] or self.canon.get(group[0]) == group[1], ("", ())
        if group is None:
            return len(text) <= self.size, None
        spelt, tokens = group[0] + text, group[1] + (token,)
        if len(spelt) > self.size:
            return False, None
        ok = any(full.startswith(spelt) and (full != spelt or self.canon[full] == tokens)
                 and self._ends(reader, reached, full[len(spelt) :], len(full)) for full in self.starts.get(tokens, ()))
        return ok, (("", ()) if len(spelt) == self.size else (spelt, tokens))

    def _ends(self, reader: Automaton, states: States, rest: str, length: int) -> bool:
        """Whether the text can go on with the digits `rest` from `states` and there end a group of `length` digits
        (a full group, or the end of the run: the text ends or goes on with another character)."""
        states = reader.after(states, rest)
        if not states:
            return False
        ends = reader.final in states or any(c not in ASCII_DIGITS for c in reader.firsts(states))
        return length == self.size or ends


def digit_rule(context: Context, reader: Automaton) -> int | None:
    """The context's digit groups (`Vocabulary.digit_groups`), where the texts hold no character that some digit
    rule (\\d, \\p{N}) may count as a digit besides 0-9 (a superscript two, an Arabic-Indic digit)."""
    numeric = [c for c in reader.chars() if c not in ASCII_DIGITS
               and (unicodedata.category(c).startswith("N") or c.isdecimal())]
    return None if numeric else context.digit_groups()


def _fits(text: str, digit_groups: int) -> bool:
    """Whether a token can stand under digit groups of this size: no digit with another character, no more digits
    than a group."""
    digits = sum(c in ASCII_DIGITS for c in text)
    return digits == 0 or (digits == len(text) and digits <= digit_groups)
