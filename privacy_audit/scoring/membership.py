"""Membership inference on the teacher's private examples (members) against held-out ones (non-members): registered
attacks, each a score per example ("higher = member") read from the scorer, and a blind control that reads only the
texts. Heuristic evidence: a split can separate the texts without any model (Das, Zhang and Tramèr 2024), which the
blind control measures on the same split; the canaries' rank tests are the sound evidence (random secrets).

An attack is one registered function (`membership_attack`); the report, its check when read, the tables and the ROC
plot follow from the registry.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

from privacy_audit.errors import InputError, ModelError
from privacy_audit.models.base import LanguageModel
from privacy_audit.models.context import Context, ScoredContinuations, TokenMoments
from privacy_audit.scoring.types import MembershipRoc, NotRun, Reconstruction
from privacy_audit.stats.roc import roc_summary

# Min-K%++ averages the lowest fifth of its per-token scores (the paper's default k).
MIN_K = 0.2
# The blind control's cross-validation: at most this many folds, stratified, shuffled by the run's seed.
BLIND_FOLDS = 5
BLIND = "blind"


class Reading:
    """What the attacks read of the examples (members first), each asked of the scorer once, when first needed."""

    def __init__(self, model: LanguageModel, context: str, texts: Sequence[str]) -> None:
        self.model, self.context, self.texts = model, context, list(texts)

    @cached_property
    def prompt(self) -> Context:
        """The teaching prompt, read once."""
        return self.model.open_context(self.context)

    @cached_property
    def with_prompt(self) -> ScoredContinuations:
        """Each example as a continuation of the teaching prompt."""
        return self.prompt(self.texts)

    @cached_property
    def without_prompt(self) -> ScoredContinuations:
        """Each example read by the same scorer with no prompt before it (its own difficulty)."""
        return self.model.open_context("")(self.texts)

    @cached_property
    def moments(self) -> TokenMoments:
        """Each example's tokens after the prompt, with the spread of the distributions they were drawn from."""
        return self.prompt.moments(self.texts, self.with_prompt)


@dataclass(frozen=True)
class MembershipAttack:
    """A registered attack: its name in reports, what it is in one line, and its score per example."""

    name: str
    label: str
    score: Callable[[Reading], np.ndarray]


MEMBERSHIP_ATTACKS: dict[str, MembershipAttack] = {}


def membership_attack(name: str, label: str) -> Callable[[Callable[[Reading], np.ndarray]], MembershipAttack]:
    """Register an attack: a function from the examples' reading to one score per example, higher = member."""

    def wrap(fn: Callable[[Reading], np.ndarray]) -> MembershipAttack:
        if name in MEMBERSHIP_ATTACKS or name == BLIND:
            raise ValueError(f"membership attack {name!r} registered twice")
        MEMBERSHIP_ATTACKS[name] = attack = MembershipAttack(name, label, fn)
        return attack

    return wrap


@membership_attack("loss", "loss: bits per token given the prompt (Yeom et al. 2018)")
def _loss(r: Reading) -> np.ndarray:
    return r.with_prompt.means(0)


@membership_attack("calibrated", "prompt-calibrated: bits per token given the prompt minus without it")
def _calibrated(r: Reading) -> np.ndarray:
    return r.with_prompt.means(0) - r.without_prompt.means(0)


@membership_attack("zlib", "zlib: bits per token given the prompt over the zlib-compressed bytes (Carlini et al. 2021)")
def _zlib(r: Reading) -> np.ndarray:
    return r.with_prompt.means(0) / np.array([zlib_bytes(t) for t in r.texts], dtype=np.float64)


@membership_attack("min_k_plus_plus", f"Min-K%++: the mean of the lowest {MIN_K:.0%} of tokens' standardised "
                                      "log-probabilities (Zhang et al. 2024)")
def _min_k_plus_plus(r: Reading) -> np.ndarray:
    m = r.moments
    return np.array([min_k_plus_plus(lp, mu, sd) for lp, mu, sd in zip(m.logprobs, m.means, m.sds)], dtype=np.float64)


# Every report made since schema 6 holds these, made or listed as not run (attacks registered later may be absent).
BUILT_IN = tuple(MEMBERSHIP_ATTACKS)


def zlib_bytes(text: str) -> int:
    """The length of the text's UTF-8 bytes compressed by zlib at its highest level."""
    return len(zlib.compress(text.encode("utf-8"), 9))


def min_k_plus_plus(logprobs: np.ndarray, means: np.ndarray, sds: np.ndarray, k: float = MIN_K) -> float:
    """Min-K%++ of one text: each token's log-probability standardised by the mean and spread of its next-token
    distribution ((log p - mu) / sigma; 0 where the distribution is certain), the lowest ceil(k n) averaged."""
    if len(logprobs) == 0:
        raise ModelError("an example has no token of its own to score")
    z = np.divide(logprobs - means, sds, out=np.zeros(len(logprobs)), where=sds > 0)
    return float(np.mean(np.sort(z)[: max(1, math.ceil(k * len(z)))]))


def blind_scores(texts: Sequence[str], members: int, *, seed: int) -> np.ndarray | None:
    """Out-of-fold scores of a classifier that never reads a model: a bag of words (scikit-learn's CountVectorizer)
    under a balanced logistic regression, cross-validated in stratified folds on the same split. None where a side
    has fewer than 2 examples (no fold could hold both)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    labels = np.array([1] * members + [0] * (len(texts) - members))
    folds = min(BLIND_FOLDS, members, len(texts) - members)
    if folds < 2:
        return None
    classifier = make_pipeline(CountVectorizer(), LogisticRegression(class_weight="balanced", max_iter=1000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed % 2**32)
    try:
        return cross_val_predict(classifier, list(texts), labels, cv=cv, method="decision_function")
    except ValueError:  # a fold's texts hold no word at all
        return None


def roc_of(name: str, scores: np.ndarray, members: int) -> MembershipRoc:
    """The ROC figures of one score over the examples, members first (`stats.roc.roc_summary`)."""
    roc = roc_summary(member_scores=scores[:members], non_member_scores=scores[members:])
    return MembershipRoc(
        name=name, member_scores=tuple(map(float, scores[:members])),
        non_member_scores=tuple(map(float, scores[members:])), auc=roc.auc, auc_ci=roc.auc_ci,
        tpr_at_1pct_fpr=roc.tpr_at_1pct_fpr, tpr_at_0_1pct_fpr=roc.tpr_at_0_1pct_fpr, fpr=roc.fpr, tpr=roc.tpr,
    )


def attack_scores(model: LanguageModel, context: str, texts: Sequence[str]) -> tuple[dict[str, np.ndarray],
                                                                                   tuple[NotRun, ...]]:
    """Every registered attack's score of each text as a continuation of `context`; an attack the scorer cannot make
    (no distributions, no prompt-free reading) is listed with its reason. The loss, which every scorer gives, is
    never skipped."""
    reading = Reading(model, context, texts)
    made: dict[str, np.ndarray] = {}
    not_run: list[NotRun] = []
    for attack in MEMBERSHIP_ATTACKS.values():
        try:
            made[attack.name] = np.asarray(attack.score(reading), dtype=np.float64)
        except ModelError as exc:
            if attack.name == "loss":
                raise
            not_run.append(NotRun(name=attack.name, reason=str(exc)))
    return made, tuple(not_run)


def membership(
    scores: Mapping[str, np.ndarray], not_run: Sequence[NotRun], texts: Sequence[str], members: int, *, seed: int,
) -> Reconstruction:
    """The attacks' ROCs over texts whose first `members` are the members, and the blind control on the same split."""
    blind = blind_scores(texts, members, seed=seed)
    return Reconstruction(
        attacks=tuple(roc_of(name, values, members) for name, values in scores.items()),
        blind=None if blind is None else roc_of(BLIND, blind, members), not_run=tuple(not_run),
    )


def reconstruction(
    model: LanguageModel, context: str, *, members: Sequence[str], non_members: Sequence[str], seed: int = 0,
) -> Reconstruction:
    """Every registered attack on the examples as continuations of `context`, and the blind control on the same
    split."""
    if not members or not non_members:
        raise InputError("reconstruction needs private (member) and held-out (non-member) examples")
    texts = list(members) + list(non_members)
    scores, not_run = attack_scores(model, context, texts)
    return membership(scores, not_run, texts, len(members), seed=seed)


def strongest(rc: Reconstruction) -> MembershipRoc:
    """The attack with the largest AUC (the first registered among equals)."""
    return max(rc.attacks, key=lambda a: a.auc)


BlindVerdict = Literal["as well", "within", "beaten"]


def blind_verdict(rc: Reconstruction) -> BlindVerdict | None:
    """How the strongest attack compares with the blind control: "as well" where the blind AUC reaches the attack's
    (the texts alone separate the split as well), "within" where it lies inside the attack's interval (too few
    examples to tell them apart), "beaten" below it. None without a blind control."""
    if rc.blind is None:
        return None
    best = strongest(rc)
    if rc.blind.auc >= best.auc:
        return "as well"
    return "within" if best.auc_ci is not None and rc.blind.auc >= best.auc_ci[0] else "beaten"


def label_of(name: str) -> str:
    """How a membership score is named in tables: a registered attack's line, or the blind control's."""
    if name == BLIND:
        return "blind control: bag of words, logistic regression, cross-validated (reads no model)"
    attack = MEMBERSHIP_ATTACKS.get(name)
    return attack.label if attack is not None else name


# What the report calls sound and heuristic evidence, in one line (the renderers print it as it is).
EVIDENCE = (
    "sound evidence of leakage: the canaries' exposure and ranks, the verbatim and similarity tests (random secrets, "
    "exact tests); heuristic: membership attacks (AUC, TPR), read beside the blind control"
)
