"""Secret spaces: enumerable sets of secrets with exact size, index <-> secret maps and unbiased sampling."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from privacy_audit._registry import lookup, names, register
from privacy_audit.errors import InputError


@dataclass(frozen=True)
class SecretSpace:
    """Fixed-length strings over an alphabet: `digits(4)` is "0000".."9999" (10^4 secrets).

    Index i maps to the base-|alphabet| digits of i, most significant first, so enumeration is
    lexicographic and neighbouring indices share prefixes (which the trie scorer exploits).
    """

    kind: str
    length: int
    alphabet: str

    @property
    def size(self) -> int:
        """Exact number of secrets (a Python int: spaces may exceed 2^64)."""
        return len(self.alphabet) ** self.length

    @property
    def spec(self) -> str:
        """The textual spec this space parses from, e.g. "digits:4"."""
        return f"{self.kind}:{self.length}"

    def secret(self, index: int) -> str:
        """The secret at `index` (0 <= index < size)."""
        if not 0 <= index < self.size:
            raise InputError(f"index {index} outside space {self.spec} of size {self.size}")
        base = len(self.alphabet)
        chars = []
        for _ in range(self.length):
            index, rem = divmod(index, base)
            chars.append(self.alphabet[rem])
        return "".join(reversed(chars))

    def index(self, secret: str) -> int:
        """Inverse of `secret`: the index of a secret, or InputError if it is not in the space."""
        if len(secret) != self.length or any(c not in self.alphabet for c in secret):
            raise InputError(f"{secret!r} is not in space {self.spec}")
        base = len(self.alphabet)
        value = 0
        for c in secret:
            value = value * base + self.alphabet.index(c)
        return value

    def __contains__(self, secret: object) -> bool:
        return (
            isinstance(secret, str)
            and len(secret) == self.length
            and all(c in self.alphabet for c in secret)
        )

    def enumerate(self, start: int = 0, stop: int | None = None) -> Iterator[str]:
        """Secrets in index order from `start` to `stop` (lazily)."""
        stop = self.size if stop is None else min(stop, self.size)
        for i in range(start, stop):
            yield self.secret(i)

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` distinct secrets drawn uniformly without replacement (no modulo or prefix bias)."""
        return [self.secret(i) for i in sample_indices(self.size, n, rng)]


def sample_indices(size: int, n: int, rng: np.random.Generator) -> list[int]:
    """`n` distinct integers uniform in [0, size), for any size (Python int), in draw order."""
    if n < 0:
        raise InputError(f"cannot draw {n} secrets")
    if n > size:
        raise InputError(f"cannot draw {n} distinct secrets from a space of {size}; use a larger space")
    if size <= 2**62:
        return [int(i) for i in rng.choice(size, size=n, replace=False)]
    bits = (size - 1).bit_length()
    nbytes = (bits + 7) // 8
    mask = (1 << bits) - 1
    seen: set[int] = set()
    out: list[int] = []
    while len(out) < n:
        value = int.from_bytes(rng.bytes(nbytes), "big") & mask
        if value < size and value not in seen:
            seen.add(value)
            out.append(value)
    return out


_ALPHABETS = {
    "digits": string.digits,
    "hex": "0123456789abcdef",
    "alnum": string.digits + string.ascii_lowercase,
}


def _charset_factory(kind: str) -> Callable[[int], SecretSpace]:
    """A registry factory for fixed-length strings over one of the built-in alphabets."""

    def make(length: int) -> SecretSpace:
        if length < 1:
            raise InputError(f"space {kind}:{length}: the length must be at least 1")
        return SecretSpace(kind=kind, length=length, alphabet=_ALPHABETS[kind])

    make.__doc__ = f"Fixed-length strings of {kind} ({len(_ALPHABETS[kind])} symbols)."
    return make


for _kind in _ALPHABETS:
    register("space", _kind)(_charset_factory(_kind))


def parse_space(spec: str) -> SecretSpace:
    """Build a space from "KIND:LENGTH", e.g. "digits:4"; the kinds come from the registry."""
    kind, sep, arg = spec.partition(":")
    if not sep or not arg.strip().isdigit():
        raise InputError(f"space {spec!r} is not KIND:LENGTH (e.g. digits:4); kinds: {', '.join(names('space'))}")
    return lookup("space", kind.strip())(int(arg))


def space_from_dict(data: dict[str, object]) -> SecretSpace:
    """Rebuild a space from its JSON form (kind, length)."""
    return parse_space(f"{data['kind']}:{data['length']}")


