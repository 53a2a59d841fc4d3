"""Canaries: random secrets in a fixed template, planted in private data, with never-planted references."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from privacy_audit._io import read_json, write_json
from privacy_audit.canaries.spaces import SecretSpace, parse_space
from privacy_audit.errors import InputError, first_problem

SLOT = "{secret}"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
DERIVED_OPS = {"mul": math.prod, "add": sum}
CANARY_SET_FORMAT = "privacy-audit/canary-set"
CANARY_SET_VERSION = 1
# How a set's canaries were designed (the one list: the CLI's choices, the set's field, the report's): "template" (a
# pattern, or a preset), "echo" (a prefix drawn from the user's data before the secret, canaries/echo.py), "rare"
# (secrets of words the model finds unlikely after the template, canaries/rare.py); each with what a report says.
Design = Literal["template", "echo", "rare"]
DESIGNS: dict[Design, str] = {
    "template": "template",
    "echo": "echo (an in-distribution prefix drawn from the data, then the secret)",
    "rare": "rare (secrets of the words the model finds least likely after the template, Panda et al.)",
}
# How a set's canaries were planted: "fixed" (every canary, references never) or "randomized" (each by its own fair
# coin, the one-run design of Steinke, Nasr and Jagielski).
Inclusion = Literal["fixed", "randomized"]
# The most secrets one canary set may draw (canaries + references): more is refused before any work.
MAX_DRAW = 10_000_000
# The longest template: every candidate of the space is scored as this text, so its length multiplies the cost.
MAX_TEMPLATE_CHARS = 1_000


class Canary(BaseModel):
    """One secret in its template. References have `planted=False` and are never inserted anywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    secret: str
    text: str
    planted: bool
    repetitions: int = 1


class DesignChecks(BaseModel):
    """What the design checks found at generation time (`canaries.checks.design_checks`); the tokenizer
    fields are set only when a model was given to check with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    space_size: int
    drawn: int
    space_ok: bool
    fraction_of_space_drawn: float
    tokenizer: str
    scored_tokens_min: int | None = None
    scored_tokens_max: int | None = None
    boundary_merges: int | None = None
    boundary_merge_examples: tuple[str, ...] = ()
    boundary_note: str | None = None


class CanarySet(BaseModel):
    """Canaries and references drawn together, without replacement, from one secret space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["privacy-audit/canary-set"] = CANARY_SET_FORMAT
    version: int = CANARY_SET_VERSION
    template: str
    space: str
    seed: int
    canaries: tuple[Canary, ...]
    derived: dict[str, tuple[str, ...]] = {}
    preset: str | None = None
    design: Design = "template"
    checks: DesignChecks | None = None
    inclusion: Inclusion = "fixed"
    space_sha256: str | None = None

    @field_validator("checks", mode="before")
    @classmethod
    def _no_checks(cls, value: object) -> object:
        """Files written before the checks were typed store no checks as {}."""
        return None if value == {} else value

    @property
    def secret_space(self) -> SecretSpace:
        return parse_space(self.space)

    @property
    def prefix(self) -> str:
        """Template text before the first slot: the scorer conditions on it."""
        first = PLACEHOLDER.search(self.template)
        return self.template if first is None else self.template[: first.start()]

    @property
    def suffix(self) -> str:
        """Template text after the last slot (for a one-slot template, everything after the secret)."""
        last = list(PLACEHOLDER.finditer(self.template))
        return "" if not last else self.template[last[-1].end() :]

    @property
    def public_template(self) -> str:
        """The template as a report meant to be shared may show it: an echo design's prefix is the first words of
        a private record, so it is replaced by its length."""
        if self.design != "echo":
            return self.template
        return f"[{len(self.prefix):,} characters of a private record]{self.template[len(self.prefix):]}"

    @property
    def planted(self) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if c.planted)

    @property
    def references(self) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if not c.planted)

    def fill(self, secret: str) -> str:
        """The template with the secret's values in their slots and the derived fields computed."""
        return fill_template(self.template, self.secret_space.values(secret), self.derived)

    def extraction_target(self, secret: str) -> str:
        """What greedy decoding after the prefix must produce to recover the secret: the text up to the
        end of the last slot (for a one-slot template, the secret itself)."""
        slots = set(self.secret_space.slots)
        last = [m for m in PLACEHOLDER.finditer(self.template) if m.group(1) in slots][-1]
        upto = fill_template(self.template[: last.end()], self.secret_space.values(secret), self.derived)
        return upto[len(self.prefix) :]

    def parts(self, secret: str) -> list[str]:
        """The values a secret puts into the text (what a verbatim leak would show)."""
        return list(self.secret_space.values(secret).values())


def derive(values: Mapping[str, str], derived: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Computed fields, e.g. {"product": ("mul", "code1", "code2")} -> str(int(code1) * int(code2))."""
    out = {}
    for name, (op, *args) in derived.items():
        try:
            numbers = [int(values[a]) for a in args]
        except ValueError:
            raise InputError(
                f"derived field {name!r} needs numeric slots ({', '.join(args)}); a value there is not a whole number"
            ) from None
        out[name] = str(DERIVED_OPS[op](numbers))
    return out


def fill_template(template: str, values: Mapping[str, str], derived: Mapping[str, Sequence[str]] = {}) -> str:
    """Replace each {slot} and {derived} placeholder (single pass, so values are never re-read as slots)."""
    table = {**values, **derive(values, derived)}
    return PLACEHOLDER.sub(lambda m: table[m.group(1)], template)


def check_template(
    template: str, slots: Sequence[str] = ("secret",), derived: Mapping[str, Sequence[str]] = {}
) -> None:
    """Every slot of the space must appear; `{secret}` (the slot of a one-slot space) exactly once.

    Named slots (`{name}`, `{code1}`) may repeat, as in the paper's name pattern; other `{word}`
    placeholders must be derived fields; the template needs text besides its slots.
    """
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InputError(
            f"the template has {len(template):,} characters, more than the {MAX_TEMPLATE_CHARS:,} a canary may have"
        )
    found = PLACEHOLDER.findall(template)
    for name, (op, *args) in derived.items():
        if op not in DERIVED_OPS or not args or any(a not in slots for a in args):
            raise InputError(
                f"derived field {name!r} must be [{'|'.join(DERIVED_OPS)}, slot, ...] over the slots {', '.join(slots)}"
            )
    unknown = sorted(set(found) - set(slots) - set(derived))
    if unknown:
        raise InputError(f"template {template!r} has {{{unknown[0]}}} but the space's slots are {', '.join(slots)}")
    missing = [s for s in slots if s not in found]
    if slots == ("secret",) and found.count("secret") != 1:
        raise InputError(
            f"template {template!r} has {found.count('secret')} {SLOT} slots; it needs exactly one, "
            f'e.g. "The secret code is {SLOT}" (to repeat a secret, use a named slot from a preset)'
        )
    if missing:
        raise InputError(f"template {template!r} lacks the slot {{{missing[0]}}} of its space")
    if not PLACEHOLDER.sub("", template).strip():
        raise InputError(
            f"template {template!r} has no text around {SLOT}; give it a context such as 'The secret code is'"
        )


def _check_counts(space: SecretSpace, count: int, references: int, repetitions: int) -> None:
    if space.size < 2:
        raise InputError(
            f"space {space.spec} holds a single secret, so nothing about it can be measured; use a larger space"
        )
    if count < 1:
        raise InputError("--count must be at least 1")
    if references < 0:
        raise InputError("--references cannot be negative")
    if repetitions < 1:
        raise InputError("--repetitions must be at least 1")
    total = count + references
    if total > MAX_DRAW:
        raise InputError(
            f"{count:,} canaries + {references:,} references is more than the {MAX_DRAW:,} secrets one set may draw"
        )
    if total > space.size:
        raise InputError(
            f"{count} canaries + {references} references need {total} distinct secrets but space "
            f"{space.spec} holds {space.size}; use a larger space or fewer"
        )


def generate_canary_set(
    *, template: str, space: str | SecretSpace, count: int, references: int, seed: int, repetitions: int = 1,
    derived: Mapping[str, Sequence[str]] | None = None, preset: str | None = None, randomized: bool = False,
) -> CanarySet:
    """Draw `count` canaries and `references` never-planted references, all distinct, uniformly.

    One draw without replacement of count + references secrets; the first `count` are planted.
    With `randomized` (the one-run design of Steinke, Nasr and Jagielski 2023) each of the
    count + references secrets is planted by its own fair coin instead, and the set records which.
    Same arguments -> the same set, byte for byte.
    """
    secret_space = parse_space(space) if isinstance(space, str) else space
    derived = {k: tuple(v) for k, v in (derived or {}).items()}
    check_template(template, secret_space.slots, derived)
    _check_counts(secret_space, count, references, repetitions)
    total = count + references
    rng = np.random.default_rng(seed)
    secrets = secret_space.sample(total, rng)
    width = len(str(max(count, references, 1) - 1))
    def text(secret: str) -> str:
        return fill_template(template, secret_space.values(secret), derived)

    if randomized:
        coins = rng.random(total) < 0.5
        if not coins.any():
            raise InputError(
                f"no coin planted any of the {total} canaries (chance 2^-{total}); use more canaries or another seed"
            )
        width = len(str(total - 1))
        items = [
            Canary(
                id=f"canary-{i:0{width}d}", secret=s, text=text(s), planted=bool(c), repetitions=repetitions if c else 0
            )
            for i, (s, c) in enumerate(zip(secrets, coins))
        ]
    else:
        items = [
            Canary(id=f"canary-{i:0{width}d}", secret=s, text=text(s), planted=True, repetitions=repetitions)
            for i, s in enumerate(secrets[:count])
        ] + [
            Canary(id=f"ref-{i:0{width}d}", secret=s, text=text(s), planted=False, repetitions=0)
            for i, s in enumerate(secrets[count:])
        ]
    return CanarySet(
        template=template, space=secret_space.spec, seed=seed, canaries=tuple(items), derived=derived, preset=preset,
        inclusion="randomized" if randomized else "fixed", space_sha256=secret_space.digest,
    )


def save_canary_set(canary_set: CanarySet, path: str | os.PathLike[str]) -> None:
    """Write the set as JSON with mode 0600 (it holds the secrets)."""
    write_json(path, canary_set.model_dump(mode="json"), private=True)


def load_canary_set(path: str | os.PathLike[str]) -> CanarySet:
    """Read and validate a canary-set file."""
    data = read_json(path, what="canary set")
    if not isinstance(data, dict) or data.get("format") != CANARY_SET_FORMAT:
        raise InputError(f"{path} is not a privacy-audit canary set (make one with 'privacy-audit canaries generate')")
    if data.get("version") != CANARY_SET_VERSION:
        raise InputError(
            f"canary set {path} has version {data.get('version')}; this privacy-audit reads version "
            f"{CANARY_SET_VERSION}"
        )
    try:
        canary_set = CanarySet.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"canary set {path} is malformed at {first_problem(exc)}") from None
    if not canary_set.planted:
        raise InputError(
            f"canary set {path} holds no planted canaries; make one with 'privacy-audit canaries generate'"
        )
    space = canary_set.secret_space
    if canary_set.space_sha256 is not None and canary_set.space_sha256 != space.digest:
        changed = ", ".join(space.files) or space.spec
        raise InputError(
            f"canary set {path} was drawn from another {space.spec}: {changed} has changed since it was generated; "
            "restore it or generate the set again"
        )
    if space.size < 2:
        raise InputError(
            f"canary set {path}: space {space.spec} holds a single secret, so nothing about it can be measured"
        )
    check_template(canary_set.template, space.slots, canary_set.derived)
    for canary in canary_set.canaries:
        if canary.secret not in space or canary.text != canary_set.fill(canary.secret):
            raise InputError(f"canary set {path}: {canary.id} does not match its template and space {space.spec}")
    return canary_set
