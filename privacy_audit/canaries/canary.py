"""Canaries: random secrets in a fixed template, planted in private data, with never-planted references."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from privacy_audit._io import read_json, write_json
from privacy_audit.canaries.spaces import SecretSpace, parse_space
from privacy_audit.errors import InputError

SLOT = "{secret}"
CANARY_SET_FORMAT = "privacy-audit/canary-set"
CANARY_SET_VERSION = 1


class Canary(BaseModel):
    """One secret in its template. References have `planted=False` and are never inserted anywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    secret: str
    text: str
    planted: bool
    repetitions: int = 1


class CanarySet(BaseModel):
    """Canaries and references drawn together, without replacement, from one secret space."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["privacy-audit/canary-set"] = CANARY_SET_FORMAT
    version: int = CANARY_SET_VERSION
    template: str
    space: str
    seed: int
    canaries: tuple[Canary, ...]

    @property
    def secret_space(self) -> SecretSpace:
        return parse_space(self.space)

    @property
    def prefix(self) -> str:
        """Template text before the secret: the scorer conditions on it."""
        return self.template.split(SLOT, 1)[0]

    @property
    def suffix(self) -> str:
        """Template text after the secret (scored together with the secret)."""
        return self.template.split(SLOT, 1)[1]

    @property
    def planted(self) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if c.planted)

    @property
    def references(self) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if not c.planted)

    def fill(self, secret: str) -> str:
        """The template with `secret` in its slot."""
        return self.prefix + secret + self.suffix


def check_template(template: str) -> None:
    """A template must hold exactly one `{secret}` slot and some text around it."""
    count = template.count(SLOT)
    if count != 1:
        raise InputError(
            f"template {template!r} has {count} {SLOT} slots; it needs exactly one, "
            f'e.g. "The secret code is {SLOT}"'
        )
    if not template.replace(SLOT, "").strip():
        raise InputError(f"template {template!r} has no text around {SLOT}; give it a context such as 'The secret code is'")


def generate_canary_set(
    *,
    template: str,
    space: str | SecretSpace,
    count: int,
    references: int,
    seed: int,
    repetitions: int = 1,
) -> CanarySet:
    """Draw `count` canaries and `references` never-planted references, all distinct, uniformly.

    One draw without replacement of count + references secrets; the first `count` are planted.
    Same arguments -> the same set, byte for byte.
    """
    check_template(template)
    secret_space = parse_space(space) if isinstance(space, str) else space
    if count < 1:
        raise InputError("--count must be at least 1")
    if references < 0:
        raise InputError("--references cannot be negative")
    if repetitions < 1:
        raise InputError("--repetitions must be at least 1")
    total = count + references
    if total > secret_space.size:
        raise InputError(
            f"{count} canaries + {references} references need {total} distinct secrets but space "
            f"{secret_space.spec} holds {secret_space.size}; use a larger space or fewer"
        )
    rng = np.random.default_rng(seed)
    secrets = secret_space.sample(total, rng)
    width = len(str(max(count, references, 1) - 1))
    items = [
        Canary(id=f"canary-{i:0{width}d}", secret=s, text=template.replace(SLOT, s), planted=True, repetitions=repetitions)
        for i, s in enumerate(secrets[:count])
    ] + [
        Canary(id=f"ref-{i:0{width}d}", secret=s, text=template.replace(SLOT, s), planted=False, repetitions=0)
        for i, s in enumerate(secrets[count:])
    ]
    return CanarySet(template=template, space=secret_space.spec, seed=seed, canaries=tuple(items))


def save_canary_set(canary_set: CanarySet, path: str | os.PathLike[str]) -> None:
    """Write the set as JSON with mode 0600 (it holds the secrets)."""
    write_json(path, canary_set.model_dump(mode="json"), private=True)


def load_canary_set(path: str | os.PathLike[str]) -> CanarySet:
    """Read and validate a canary-set file."""
    data = read_json(path, what="canary set")
    if not isinstance(data, dict) or data.get("format") != CANARY_SET_FORMAT:
        raise InputError(f"{path} is not a privacy-audit canary set (make one with 'privacy-audit canaries generate')")
    if data.get("version") != CANARY_SET_VERSION:
        raise InputError(f"canary set {path} has version {data.get('version')}; this privacy-audit reads version {CANARY_SET_VERSION}")
    try:
        canary_set = CanarySet.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"canary set {path} is malformed at {where}: {first['msg']}") from None
    check_template(canary_set.template)
    space = canary_set.secret_space
    for canary in canary_set.canaries:
        if canary.secret not in space or canary.text != canary_set.fill(canary.secret):
            raise InputError(f"canary set {path}: {canary.id} does not match its template and space {space.spec}")
    return canary_set
