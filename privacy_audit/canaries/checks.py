"""Canary design checks, run at generation time: a biased or badly tokenized canary ruins every number after it."""

from __future__ import annotations

import numpy as np

from privacy_audit.canaries.canary import CanarySet, DesignChecks
from privacy_audit.models.base import LanguageModel


def design_checks(canary_set: CanarySet, model: LanguageModel | None = None) -> DesignChecks:
    """Space size against the draw; with a model's tokenizer: tokens per secret and boundary merges.

    A boundary merge means the tokens covering a secret inside the template differ from the secret's
    own tokens (e.g. " Alice" is one token with its leading space): scoring still counts every token
    that reaches past the template prefix, but best-first search cannot run (exact mode still can).
    """
    space = canary_set.secret_space
    drawn = len(canary_set.canaries)
    basics = {
        "space_size": space.size, "drawn": drawn, "space_ok": drawn <= space.size,
        "fraction_of_space_drawn": drawn / space.size,
    }
    if model is None:
        return DesignChecks(**basics, tokenizer="not checked (pass --check-model to check tokenization)")
    prefix = len(canary_set.prefix)
    first = [canary_set.parts(c.secret)[0] for c in canary_set.canaries]
    filled = model.tokenize([c.text for c in canary_set.canaries])
    alone = model.tokenize(first)
    counts, merges = [], []
    for (ids, ends), (own_ids, _), value, canary in zip(filled, alone, first, canary_set.canaries):
        starts = [0, *ends[:-1]]
        counts.append(sum(e > prefix for e in ends))
        covering = [t for t, s, e in zip(ids, starts, ends) if s < prefix + len(value) and e > prefix]
        if covering != list(own_ids):
            merges.append(canary.id)
    return DesignChecks(
        **basics,
        tokenizer=model.name,
        scored_tokens_min=int(np.min(counts)),
        scored_tokens_max=int(np.max(counts)),
        boundary_merges=len(merges),
        boundary_merge_examples=tuple(merges[:5]),
        boundary_note=(
            "every secret tokenizes the same alone and in the template"
            if not merges
            else "some secrets merge with the template text next to them; scores stay exact (canonical tokens of the "
                 "whole text)"
        ),
    )
