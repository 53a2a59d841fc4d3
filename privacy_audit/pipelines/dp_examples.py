"""Differentially private synthetic examples (Tang et al., ICLR 2024: DP few-shot generation).

m teachers hold disjoint shards of the private data. Each round writes one example token by token: every teacher
reads a few-shot prompt of `n_gen` examples of its own shard, and at each step the next token is the noisy argmax of
the sum of the teachers' next-token probabilities over the `vocab` tokens a public prompt (no private data) finds
likeliest, Gaussian noise added to each of those sums. The mechanism: one record lies in one shard, so it changes one
teacher's probability vector, by at most sqrt(2) in L2 norm; each step is a Gaussian mechanism with that
sensitivity, the argmax post-processing, and the `n` x `max_new_tokens` steps (generation may stop sooner, which is
read from what was released) compose. The noise is calibrated to (`epsilon`, `delta`) by Google's `dp-accounting`
(Renyi DP; `accounting`), and the teaching sidecar records the claim as accounted: mechanism, noise multiplier,
accountant and ledger. The public prompt names the task's classes (task metadata, not a record). Why this
mechanism: it is the paper's, its privacy unit is the one the audit plants (a record of one shard), and the reduced
vocabulary costs no privacy (it comes from the public prompt). `noise=false` runs
the same aggregation without noise and claims nothing (the no-privacy row of a comparison).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from privacy_audit.errors import InputError
from privacy_audit.models.base import LanguageModel
from privacy_audit.models.context import Context
from privacy_audit.pipelines.base import (
    Positive, PrivacyClaim, Record, TeacherArtifact, TeachingOutput, format_example, pipeline,
)
from privacy_audit.pipelines.examples import shards_of
from privacy_audit.pipelines.accounting import ACCOUNTANT, calibrate_gaussian

PUBLIC_PROMPT = ("Labelled text messages, one example per paragraph: 'Text:' then the message, 'Class:' then "
                 "{classes}.\n\n")
START = "Text:"  # every example begins so (public text: no privacy spent on it)
SENSITIVITY = math.sqrt(2.0)  # L2 distance of two probability vectors: one record changes one teacher's
MECHANISM = ("Gaussian noise on the sum of the teachers' next-token probabilities over the public prompt's likeliest "
             "tokens, noisy argmax (Tang et al. 2024); L2 sensitivity sqrt(2), a record of one shard")
KEPT_BY = "written jointly: the noisy argmax of the teachers' summed next-token probabilities, token by token"


@dataclass(frozen=True)
class Faults:
    """Ways an implementation can break the claim it still accounts, for audits of the audit (tests and
    benchmarks/bench_dp_faults.py); the registered pipeline runs none. `noise_factor`: the noise's standard deviation
    divided by it; `weight`: teacher 0's probabilities count that many times in the sum (not clipped to its share, so
    one record of its shard moves the sum by weight x sqrt(2)); `sees_all`: teacher 0 draws its examples from every
    shard (a record reaches two teachers)."""

    noise_factor: float = 1.0
    weight: float = 1.0
    sees_all: bool = False


def _write(
    public: Context, teachers: list[Context], vocabulary: Mapping[int, str], *, vocab: int, std: float,
    weights: Sequence[float], max_new_tokens: int, rng: np.random.Generator,
) -> str:
    """One example after START, token by token, up to a blank line or `max_new_tokens`: each token the noisy argmax
    of the teachers' next-token probabilities summed with `weights` (1 each: the mechanism as accounted)."""
    ids = np.array(sorted(vocabulary), dtype=np.int64)
    public_tail, tails = public.tail_tokens(), [c.tail_tokens() for c in teachers]
    out: list[int] = []
    text = ""
    for _ in range(max_new_tokens):
        top = ids[np.argsort(-public.search([public_tail + out], ids)[0], kind="stable")[:vocab]]
        total = sum(w * np.exp2(c.search([tail + out], top)[0]) for c, tail, w in zip(teachers, tails, weights))
        noisy = total + rng.normal(0.0, std, len(top)) if std > 0 else total
        out.append(int(top[int(np.argmax(noisy))]))
        text = "".join(vocabulary[i] for i in out)
        if "\n\n" in text:
            break
    return (START + text).split("\n\n", 1)[0].strip()


@pipeline("dp-examples", needs=("model", "data"))
def dp_examples(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, teachers: Positive = 8,
    n: Positive = 4, n_gen: Positive = 4, epsilon: Annotated[float, Field(gt=0, le=100)] = 4.0,
    delta: Annotated[float, Field(gt=0, lt=1)] = 1e-5, noise: bool = True,
    vocab: Annotated[int, Field(ge=2, le=1_000)] = 50, max_new_tokens: Positive = 48,
    labels: Mapping[str, str] | None = None,
) -> TeachingOutput:
    """n synthetic examples from m teachers' noisy aggregated next-token probabilities, (epsilon, delta)-DP per
    record (accounted with dp-accounting), or without noise (`noise=false`: no claim)."""
    return dp_teach(records, model=model, seed=seed, teachers=teachers, n=n, n_gen=n_gen, epsilon=epsilon,
                    delta=delta, noise=noise, vocab=vocab, max_new_tokens=max_new_tokens, labels=labels)


def dp_teach(
    records: Sequence[Record], *, model: LanguageModel | None, seed: int, teachers: int, n: int, n_gen: int,
    epsilon: float, delta: float, noise: bool, vocab: int, max_new_tokens: int, labels: Mapping[str, str] | None,
    faults: Faults = Faults(),
) -> TeachingOutput:
    """The pipeline's work, `faults` and all: the claim is the one the mechanism without faults accounts."""
    if model is None:
        raise InputError("pipeline 'dp-examples' needs a model (--model)")
    model.require("score")
    names = sorted({(labels or {}).get(r.label, r.label) for r in records if r.label is not None})
    preamble = PUBLIC_PROMPT.format(classes="one of " + ", ".join(names) if names else "its class")
    public = model.open_context(preamble + START)
    if not public.can_search or not public.lists_vocabulary:
        raise InputError(f"pipeline 'dp-examples' needs next-token probabilities over a listed vocabulary, which "
                         f"{model.name} ({model.backend}) does not give; use an in-process model (embedded, hf:)")
    rng = np.random.default_rng(seed)
    shards = shards_of(records, teachers, 0, rng)
    ledger = calibrate_gaussian(epsilon, delta, n * max_new_tokens) if noise else None
    std = ledger.noise_multiplier * SENSITIVITY / faults.noise_factor if ledger else 0.0
    weights = [faults.weight] + [1.0] * (teachers - 1)
    every = sorted(i for s in shards for i in s)
    reads = [every if t == 0 and faults.sees_all else s for t, s in enumerate(shards)]
    vocabulary = public.vocabulary()
    chosen: list[str] = []
    artifacts: list[TeacherArtifact] = []
    for round_ in range(n):
        picks = [[int(i) for i in rng.choice(s, size=min(n_gen, len(s)), replace=False)] for s in reads]
        privates = ["".join(format_example(records[i], labels) + "\n\n" for i in pick) for pick in picks]
        contexts = [model.open_context(preamble + private + START) for private in privates]
        example = _write(public, contexts, vocabulary, vocab=vocab, std=std, weights=weights,
                         max_new_tokens=max_new_tokens, rng=rng)
        chosen.append(example)
        artifacts += [TeacherArtifact(teacher=t, round=round_, records=tuple(pick), private=private,
                                      generated=(example,), kept=(example,), kept_by=KEPT_BY)
                      for t, (pick, private) in enumerate(zip(picks, privates))]
    claim = None if ledger is None else PrivacyClaim(
        epsilon=ledger.epsilon, delta=delta, source="accounted", mechanism=MECHANISM,
        noise_multiplier=ledger.noise_multiplier, accountant=ACCOUNTANT, ledger=ledger.ledger,
        mu=ledger.mu)
    options = {"teachers": teachers, "n": n, "n_gen": n_gen, "epsilon": epsilon, "delta": delta, "noise": noise,
               "vocab": vocab, "max_new_tokens": max_new_tokens, "labels": dict(labels or {})}
    if faults != Faults():
        options["faults"] = asdict(faults)  # a broken run says so in its sidecar and report
    used = sorted({i for a in artifacts for i in a.records})
    return TeachingOutput(
        prompt="\n\n".join(chosen), pipeline="dp-examples", options=options, seed=seed, model=model.info(),
        labels=dict(labels or {}), used_records=tuple(used), artifacts=tuple(artifacts), claim=claim,
    )
