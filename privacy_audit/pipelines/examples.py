"""The paper's synthetic-examples pipeline (Mohtashami et al. 2023, §2.2.2 and App. H).

m teachers hold random shards of the private data (or the shards planting wrote, when every record
names its teacher). Each round, every teacher shows `n_gen` of its private examples as a few-shot
prompt with no instruction, samples `samples` continuations at temperature `temperature`, and keeps
its `keep` lowest-perplexity ones (the perplexity it sampled them with); the aggregator picks one
candidate from the pool for the student's prompt; n rounds give n examples. Rounds do not depend on
each other, so every round's samples are generated in one batched call. Aggregators: `random`,
or `voting` (each teacher holds out `held_out` of its examples, scores every candidate as a
continuation of them, length-normalised, and votes for the best; most votes wins).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import Completion, LanguageModel
from privacy_audit.pipelines.base import (
    NonNegative, Positive, Record, RoundArtifact, TeacherArtifact, TeachingOutput, Temperature, format_example,
    pipeline,
)

AGGREGATORS = ("random", "voting")
KEPT_BY_SAMPLING = "highest log-probability per token, as the teacher sampled them"
KEPT_BY_SCORING = "highest log-probability per token, scored after the teacher's prompt"
KEPT_FIRST = "the first samples: the teacher reported no log-probabilities and cannot score text"


def _first_example(text: str) -> str:
    """A generated continuation up to the first blank line (one synthetic example)."""
    return text.split("\n\n", 1)[0].strip()


def shards_of(records: Sequence[Record], teachers: int, reserve: int, rng: np.random.Generator) -> list[list[int]]:
    """Each teacher's record indices: the teachers planting assigned, else a seeded random split."""
    if len(records) < teachers * (1 + reserve):
        raise InputError(
            f"{len(records)} records cannot make {teachers} shards of at least {1 + reserve}; use fewer teachers"
        )
    if not all(r.teacher is not None for r in records):
        return [list(s) for s in np.array_split(rng.permutation(len(records)), teachers)]
    if {r.teacher for r in records} != set(range(teachers)):
        raise InputError(
            f"the records are split among teachers {sorted({r.teacher for r in records})}, not 0..{teachers - 1}"
        )
    shards = [[i for i, r in enumerate(records) if r.teacher == t] for t in range(teachers)]
    if min(len(s) for s in shards) < 1 + reserve:
        raise InputError(f"every teacher's shard needs at least {1 + reserve} records")
    return shards


def _plan(gen_from: list[list[int]], n_gen: int, rng: np.random.Generator) -> tuple[list[list[int]], list[int]]:
    """One round's draws: the `n_gen` private examples each teacher shows, and the seed of its samples."""
    picks, seeds = [], []
    for shard in gen_from:
        picks.append([int(i) for i in rng.choice(shard, size=min(n_gen, len(shard)), replace=False)])
        seeds.append(int(rng.integers(2**31)))
    return picks, seeds


def _generate_rounds(
    model: LanguageModel, records: Sequence[Record], plans: list[tuple[list[list[int]], list[int]]], *, samples: int,
    temperature: float, labels: Mapping[str, str] | None, max_new_tokens: int, batch_size: int | None,
) -> tuple[list[list[str]], list[Completion]]:
    """Every round's few-shot prompts, and all their samples generated in one batched call (rounds are independent)."""
    fewshots = [
        ["\n\n".join(format_example(records[i], labels) for i in pick) + "\n\n" for pick in picks] for picks, _ in plans
    ]
    completions = model.complete(
        [f for round_ in fewshots for f in round_ for _ in range(samples)], temperature=temperature,
        max_new_tokens=max_new_tokens, seed=[s + j for _, seeds in plans for s in seeds for j in range(samples)],
        stop=("\n\n",), batch_size=batch_size,
    )
    return fewshots, completions


def _turns(
    model: LanguageModel, round_: int, picks: list[list[int]], fewshots: list[str], completions: Sequence[Completion],
    keep: int,
) -> list[TeacherArtifact]:
    """Each teacher's turn of a round: its usable samples and the `keep` it finds most likely, by the
    log2-probability per token it sampled them with; from a backend that does not report it, by scoring them
    after its prompt; from one that can do neither (an API without log-probabilities), the first `keep`
    samples (they are exchangeable draws). Each artifact says which rule kept its samples."""
    samples = len(completions) // len(picks)
    turns = []
    for t, (pick, fewshot) in enumerate(zip(picks, fewshots)):
        pairs = [
            (text, c.mean_logprob)
            for c in completions[t * samples : (t + 1) * samples]
            if (text := _first_example(c.text))
        ]
        cands = [text for text, _ in pairs]
        if all(s is not None for _, s in pairs):
            scores, rule = np.array([s for _, s in pairs], dtype=np.float64), KEPT_BY_SAMPLING
        elif model.can("score"):
            scores, rule = model.open_context(fewshot)(cands).means(0), KEPT_BY_SCORING
        else:
            scores, rule = np.zeros(len(cands)), KEPT_FIRST
        kept = [cands[i] for i in np.argsort(-scores, kind="stable")[:keep]]
        turns.append(
            TeacherArtifact(
                teacher=t, round=round_, records=tuple(pick), private=fewshot, generated=tuple(cands), kept=tuple(kept),
                kept_by=rule if cands else "",
            )
        )
    return turns


def _aggregate(
    model: LanguageModel, records: Sequence[Record], pool: list[tuple[int, str]], votes_from: list[list[int]],
    aggregator: str, labels: Mapping[str, str] | None, rng: np.random.Generator,
) -> tuple[int, tuple[int, ...]]:
    """The winning candidate of a round's pool, and the ballots when the teachers voted."""
    if aggregator == "random":
        return int(rng.integers(len(pool))), ()
    ballots = []
    for hold in votes_from:
        context = "\n\n".join(format_example(records[i], labels) for i in hold) + "\n\n"
        ballots.append(int(np.argmax(model.open_context(context)([c for _, c in pool]).means(0))))
    return int(np.argmax(np.bincount(ballots, minlength=len(pool)))), tuple(ballots)


@pipeline("examples", needs=("model", "data"))
def examples(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, teachers: Positive = 8,
    n: Positive = 8, n_gen: Positive = 4, samples: Positive = 4, keep: Positive = 1, temperature: Temperature = 0.7,
    aggregator: Literal["random", "voting"] = "random", held_out: NonNegative = 2,
    labels: Mapping[str, str] | None = None, max_new_tokens: Positive = 96, batch_size: Positive | None = None,
) -> TeachingOutput:
    """n synthetic examples from m teachers; per-teacher artifacts say who generated what from which prompt.

    `batch_size` is how many samples the model generates at once (default: what fits); it changes no output.
    """
    if model is None:
        raise InputError("pipeline 'examples' needs a model (--model)")
    if aggregator not in AGGREGATORS:
        raise InputError(f"unknown aggregator {aggregator!r}; choose one of {', '.join(AGGREGATORS)}")
    if min(teachers, n, n_gen, samples, keep) < 1 or keep > samples:
        raise InputError("teachers, n, n_gen, samples and keep must be >= 1, and keep <= samples")
    if aggregator == "voting" and not model.can("score"):
        raise InputError(
            f"aggregator 'voting' has teachers vote by the likelihood of their held-out examples, which "
            f"{model.name} ({model.backend}) cannot give; use aggregator 'random' or a teacher that scores text"
        )
    reserve = held_out if aggregator == "voting" else 0
    rng = np.random.default_rng(seed)
    shards = shards_of(records, teachers, reserve, rng)
    votes_from, gen_from = [s[:reserve] for s in shards], [s[reserve:] for s in shards]
    plans = [_plan(gen_from, n_gen, rng) for _ in range(n)]
    fewshots, completions = _generate_rounds(
        model, records, plans, samples=samples, temperature=temperature, labels=labels, max_new_tokens=max_new_tokens,
        batch_size=batch_size,
    )
    chosen: list[str] = []
    artifacts: list[TeacherArtifact | RoundArtifact] = []
    per_round = teachers * samples
    for round_, ((picks, _), round_fewshots) in enumerate(zip(plans, fewshots)):
        turns = _turns(
            model, round_, picks, round_fewshots, completions[round_ * per_round : (round_ + 1) * per_round], keep
        )
        pool = [(turn.teacher, c) for turn in turns for c in turn.kept]
        if not pool:
            raise PipelineError(
                f"round {round_}: no teacher generated a usable example; raise max_new_tokens or temperature"
            )
        winner, ballots = _aggregate(model, records, pool, votes_from, aggregator, labels, rng)
        chosen.append(pool[winner][1])
        artifacts += [
            *turns, RoundArtifact(round=round_, aggregator=aggregator, chosen_teacher=pool[winner][0], votes=ballots),
        ]
    options = {
        "teachers": teachers, "n": n, "n_gen": n_gen, "samples": samples, "keep": keep, "temperature": temperature,
        "aggregator": aggregator, "held_out": held_out, "labels": dict(labels or {}), "max_new_tokens": max_new_tokens,
    }
    used = sorted({i for a in artifacts if isinstance(a, TeacherArtifact) for i in a.records})
    return TeachingOutput(
        prompt="\n\n".join(chosen), pipeline="examples", options=options, seed=seed, model=model.info(),
        labels=dict(labels or {}), used_records=tuple(used), artifacts=tuple(artifacts),
    )
