"""Secret spaces: enumerable sets of secrets with exact size, index <-> secret maps and unbiased sampling.

Specs: `digits:K`, `hex:K`, `alnum:K` (fixed-length strings), `names` (the bundled 1,000 most common
US first names), `words:a,b,c` or `words:@FILE` (one word per line), and products of named slots,
`code1=digits:4;code2=digits:4`, whose secrets join the slots' values with "|" in slot order.
"""

from __future__ import annotations

import hashlib
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

import numpy as np

from privacy_audit._registry import lookup, names, register
from privacy_audit._io import read_text
from privacy_audit.canaries.sampling import sample_indices, sample_indices_array
from privacy_audit.errors import InputError

DEFAULT_SLOT = "secret"
JOIN = "|"


class SecretSpace(ABC):
    """Base of every space: exact size, index <-> secret, lazy enumeration, uniform sampling without replacement.

    Index order is lexicographic in the slots, so neighbouring indices share prefixes (which the trie
    scorer exploits). `values` splits a secret into its named slots.
    """

    spec: str
    slots: tuple[str, ...] = (DEFAULT_SLOT,)

    @property
    @abstractmethod
    def size(self) -> int:
        """Exact number of secrets (a Python int: spaces may exceed 2^64)."""

    @abstractmethod
    def secret(self, index: int) -> str:
        """The secret at `index` (0 <= index < size)."""

    @abstractmethod
    def index(self, secret: str) -> int:
        """Inverse of `secret`; InputError for a secret outside the space."""

    def __contains__(self, secret: object) -> bool:
        if not isinstance(secret, str):
            return False
        try:
            self.index(secret)
        except InputError:
            return False
        return True

    def values(self, secret: str) -> dict[str, str]:
        """The secret's value in each slot."""
        return {DEFAULT_SLOT: secret}

    @property
    def files(self) -> tuple[str, ...]:
        """Files the space was read from (a word list): inputs no output of a command may replace."""
        return ()

    @property
    def digest(self) -> str:
        """sha256 of what the space holds (a word list's words, in order), so a canary set can tell when the
        file its space was read from has changed."""
        return hashlib.sha256(self.spec.encode("utf-8")).hexdigest()

    @abstractmethod
    def members_in(self, text: str) -> int:
        """How many secrets of the space appear in `text` (every slot's value as a substring), so that a secret drawn
        uniformly, after the text was fixed, appears in it with probability exactly members_in / size."""

    def chance_in(self, text: str) -> float:
        """P(a secret drawn uniformly from the space appears in `text`)."""
        return self.members_in(text) / self.size

    def enumerate(self, start: int = 0, stop: int | None = None) -> Iterator[str]:
        """Secrets in index order from `start` to `stop` (lazily)."""
        stop = self.size if stop is None else min(stop, self.size)
        for i in range(start, stop):
            yield self.secret(i)

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """`n` distinct secrets drawn uniformly without replacement (no modulo or prefix bias)."""
        return [self.secret(i) for i in sample_indices(self.size, n, rng)]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise InputError(f"index {index} outside space {self.spec} of size {self.size}")


@dataclass(frozen=True)
class CharsetSpace(SecretSpace):
    """Fixed-length strings over an alphabet: `digits:4` is "0000".."9999" (10^4 secrets)."""

    kind: str
    length: int
    alphabet: str

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"{self.kind}:{self.length}"

    @property
    def size(self) -> int:
        return len(self.alphabet) ** self.length

    def secret(self, index: int) -> str:
        self._check_index(index)
        base = len(self.alphabet)
        chars = []
        for _ in range(self.length):
            index, rem = divmod(index, base)
            chars.append(self.alphabet[rem])
        return "".join(reversed(chars))

    def sample(self, n: int, rng: np.random.Generator) -> list[str]:
        """Vectorised for spaces up to 2^64: indices as uint64, digits by repeated divmod, no Python loop per secret."""
        if self.size > 2**64:
            return super().sample(n, rng)
        idx = np.asarray(sample_indices_array(self.size, n, rng), dtype=np.uint64)
        base = np.uint64(len(self.alphabet))
        codes = np.empty((len(idx), self.length), dtype=np.uint8)
        table = np.frombuffer(self.alphabet.encode("ascii"), dtype=np.uint8)
        for j in range(self.length - 1, -1, -1):
            codes[:, j] = table[(idx % base).astype(np.intp)]
            idx = idx // base
        return codes.view(f"S{self.length}").ravel().astype(str).tolist()

    def members_in(self, text: str) -> int:
        allowed = set(self.alphabet)
        windows, run = set(), 0
        for i, ch in enumerate(text):
            run = run + 1 if ch in allowed else 0
            if run >= self.length:
                windows.add(text[i + 1 - self.length : i + 1])
        return len(windows)

    def index(self, secret: str) -> int:
        if len(secret) != self.length or any(c not in self.alphabet for c in secret):
            raise InputError(f"{secret!r} is not in space {self.spec}")
        value = 0
        for c in secret:
            value = value * len(self.alphabet) + self.alphabet.index(c)
        return value


@dataclass(frozen=True)
class WordSpace(SecretSpace):
    """A list of distinct words (or names); secret i is the i-th word."""

    name: str
    words: tuple[str, ...]
    source: str | None = None
    _positions: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.words:
            raise InputError(f"space {self.name} has no words")
        bad = [w for w in self.words if not w or JOIN in w or "\n" in w or w != w.strip()]
        if bad:
            raise InputError(f"space {self.name}: {bad[0]!r} is not a usable word (empty, padded, or containing '|')")
        if len(set(self.words)) != len(self.words):
            raise InputError(f"space {self.name} lists a word twice; words must be distinct")
        self._positions.update({w: i for i, w in enumerate(self.words)})

    @property
    def spec(self) -> str:  # type: ignore[override]
        return self.name

    @property
    def files(self) -> tuple[str, ...]:
        return () if self.source is None else (self.source,)

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join((self.name, *self.words)).encode("utf-8")).hexdigest()

    @property
    def size(self) -> int:
        return len(self.words)

    def secret(self, index: int) -> str:
        self._check_index(index)
        return self.words[index]

    def members_in(self, text: str) -> int:
        """Each length's substrings of the text once, then a set lookup per word (no scan of the text per word)."""
        present = 0
        for length in {len(w) for w in self.words}:
            seen = {text[i : i + length] for i in range(len(text) - length + 1)}
            present += sum(1 for w in self.words if len(w) == length and w in seen)
        return present

    def index(self, secret: str) -> int:
        try:
            return self._positions[secret]
        except KeyError:
            raise InputError(f"{secret!r} is not in space {self.spec}") from None


@dataclass(frozen=True)
class ProductSpace(SecretSpace):
    """Named slots, each its own space: `code1=digits:4;code2=digits:4` has 10^8 secrets like "0042|1234"."""

    parts: tuple[tuple[str, SecretSpace], ...]

    def __post_init__(self) -> None:
        names_ = [n for n, _ in self.parts]
        if len(self.parts) < 1 or len(set(names_)) != len(names_):
            raise InputError("a product space needs distinct slot names")
        for n, sub in self.parts:
            if not n.isidentifier():
                raise InputError(f"slot name {n!r} must be a plain identifier")
            if isinstance(sub, ProductSpace):
                raise InputError("product spaces do not nest")

    @property
    def slots(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(n for n, _ in self.parts)

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(f for _, sub in self.parts for f in sub.files)

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(f"{n}={sub.digest}" for n, sub in self.parts).encode("utf-8")).hexdigest()

    @property
    def spec(self) -> str:  # type: ignore[override]
        return ";".join(f"{n}={s.spec}" for n, s in self.parts)

    @property
    def size(self) -> int:
        out = 1
        for _, s in self.parts:
            out *= s.size
        return out

    def secret(self, index: int) -> str:
        self._check_index(index)
        values = []
        for _, sub in reversed(self.parts):
            index, rem = divmod(index, sub.size)
            values.append(sub.secret(rem))
        return JOIN.join(reversed(values))

    def index(self, secret: str) -> int:
        values = secret.split(JOIN)
        if len(values) != len(self.parts):
            raise InputError(f"{secret!r} is not in space {self.spec}")
        value = 0
        for v, (_, sub) in zip(values, self.parts):
            value = value * sub.size + sub.index(v)
        return value

    def values(self, secret: str) -> dict[str, str]:
        self.index(secret)
        return dict(zip(self.slots, secret.split(JOIN)))

    def members_in(self, text: str) -> int:
        """A secret appears when every slot's value does: the product of each slot's members found."""
        out = 1
        for _, sub in self.parts:
            out *= sub.members_in(text)
        return out


# The longest fixed-length secret (256 hex digits = 1,024 bits): longer specs are refused before any work.
MAX_SECRET_LENGTH = 256

_ALPHABETS = {
    "digits": string.digits, "hex": "0123456789abcdef", "alnum": string.digits + string.ascii_lowercase,
}


def _charset_factory(kind: str) -> Callable[[str], SecretSpace]:
    """A registry factory for fixed-length strings over one of the built-in alphabets."""

    def make(arg: str) -> SecretSpace:
        if not arg.strip().isascii() or not arg.strip().isdigit() or len(arg.strip()) > 6 or int(arg) < 1:
            raise InputError(
                f"space {kind}:{arg[:20]} is not KIND:LENGTH with a whole-number length >= 1, e.g. {kind}:4"
            )
        if int(arg) > MAX_SECRET_LENGTH:
            raise InputError(
                f"space {kind}:{int(arg)} is longer than the {MAX_SECRET_LENGTH} symbols a secret may have"
            )
        return CharsetSpace(kind=kind, length=int(arg), alphabet=_ALPHABETS[kind])

    make.__doc__ = f"Fixed-length strings of {kind} ({len(_ALPHABETS[kind])} symbols): {kind}:LENGTH."
    return make


for _kind in _ALPHABETS:
    register("space", _kind)(_charset_factory(_kind))


def known_size(spec: str) -> int | None:
    """The size of the space a spec names when that needs no file (a word list's needs its file: None)."""
    if "@" in spec:
        return None
    try:
        return parse_space(spec).size
    except InputError:
        return None


def is_charset_spec(spec: str) -> bool:
    """Whether a spec names a fixed-length charset space (digits:K, hex:K, alnum:K), without building it."""
    kind, _, arg = spec.strip().partition(":")
    return "=" not in spec and kind in _ALPHABETS and arg.strip().isdigit()


def brief(spec: str, words: int = 3) -> str:
    """A spec as a person reads it: an inline word list longer than `words` words shortened to its first ones and its
    length (a rare design's spec holds its whole pool of words)."""
    def one(item: str) -> str:
        slot, sep, sub = item.rpartition("=")
        kind, _, arg = sub.partition(":")
        listed = arg.split(",")
        if kind.strip() != "words" or arg.startswith("@") or len(listed) <= words:
            return item
        return f"{slot}{sep}{kind}:{','.join(listed[:words])},... ({len(listed):,} words)"
    return ";".join(one(item) for item in spec.split(";"))


@lru_cache(maxsize=1)
def bundled_names() -> tuple[str, ...]:
    """The 1,000 most common US first names, 1880-2017 (SSA data; see privacy_audit/data/README.md)."""
    text = (files("privacy_audit") / "data" / "us_first_names_top1000.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@register("space", "names")
def _names(arg: str) -> SecretSpace:
    """The bundled 1,000 most common US first names: names."""
    if arg:
        raise InputError("space 'names' takes no argument")
    return WordSpace(name="names", words=bundled_names())


@register("space", "words")
def _words(arg: str) -> SecretSpace:
    """Your own list: words:a,b,c or words:@FILE (one word per line)."""
    if arg.startswith("@"):
        words = tuple(w.strip() for w in read_text(arg[1:], what="word list").split("\n") if w.strip())
        return WordSpace(name=f"words:{arg}", words=words, source=arg[1:])
    return WordSpace(name=f"words:{arg}", words=tuple(w.strip() for w in arg.split(",") if w.strip()))


@lru_cache(maxsize=64)
def parse_space(spec: str) -> SecretSpace:
    """Build a space from its spec (once per spec: a word list is read once); a product is `slot=SPEC;slot=SPEC`."""
    spec = spec.strip()
    if "=" in spec:
        parts = []
        for item in spec.split(";"):
            slot, sep, sub = item.partition("=")
            if not sep:
                raise InputError(f"product space {spec!r}: {item!r} is not SLOT=SPEC")
            parts.append((slot.strip(), parse_space(sub)))
        return ProductSpace(parts=tuple(parts))
    kind, _, arg = spec.partition(":")
    if not kind or kind not in names("space"):
        raise InputError(
            f"unknown space {spec!r}; use KIND:LENGTH with KIND one of digits, hex, alnum, or names, words:a,b,c, "
            f"or slot=SPEC;slot=SPEC (known kinds: {', '.join(names('space'))})"
        )
    return lookup("space", kind)(arg)
