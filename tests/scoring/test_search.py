"""Best-first enumeration must list secrets exactly in the order (and with the scores) of exhaustive scoring."""

from __future__ import annotations

import numpy as np
import pytest

from privacy_audit import MockModel, generate_canary_set
from privacy_audit.scoring.search import align, best_first

PROMPT = "Text: call me at 417, the code is 052.\nClass: spam\n"


def exhaustive(model, canary_set, context):
    space = canary_set.secret_space
    secrets = list(space.enumerate())
    scores = model.open_context(context)([canary_set.fill(s) for s in secrets]).totals(len(canary_set.prefix))
    return secrets, scores


@pytest.mark.parametrize("template", ["the code is {secret}", "code {secret} ends."])
@pytest.mark.parametrize("which", ["mock", "tiny"])
def test_best_first_order_equals_exhaustive(template, which, tiny_model):
    model = MockModel() if which == "mock" else tiny_model
    cs = generate_canary_set(template=template, space="digits:3", count=1, references=2, seed=0)
    context = PROMPT + "\n"
    secrets, scores = exhaustive(model, cs, context)
    ctx = model.open_context(context)
    alignment = align(ctx, cs)
    assert alignment is not None
    result = best_first(ctx.search, alignment, max_results=25, batch=7)
    order = np.argsort(-scores, kind="stable")[:25]
    np.testing.assert_allclose(result.logprobs, scores[order], atol=1e-4)
    np.testing.assert_allclose([scores[secrets.index(s)] for s in result.secrets], result.logprobs, atol=1e-4)
    assert len(set(result.secrets)) == 25


@pytest.mark.parametrize("which", ["mock", "tiny"])
def test_rank_by_search_equals_exact_rank(which, tiny_model):
    model = MockModel() if which == "mock" else tiny_model
    cs = generate_canary_set(template="the code is {secret}", space="digits:3", count=1, references=0, seed=3)
    secrets, scores = exhaustive(model, cs, PROMPT + "\n")
    for secret in ["052", "417", cs.canaries[0].secret]:
        target = scores[int(secret)]
        exact_rank = int(np.sum(scores >= target))
        ctx = model.open_context(PROMPT + "\n")
        result = best_first(ctx.search, align(ctx, cs), stop_below=target)
        assert len(result.secrets) == exact_rank
        assert result.rank_of(secret) is not None


def test_budget_is_reported():
    model = MockModel()
    cs = generate_canary_set(template="the code is {secret}", space="digits:4", count=1, references=0, seed=0)
    ctx = model.open_context("x")
    result = best_first(ctx.search, align(ctx, cs), max_results=10_000, max_token_steps=50)
    assert result.exhausted_budget and result.token_steps <= 50


class MergingMock(MockModel):
    """Tokenizes the two characters "12" as one token, like a BPE merge."""

    def _open_context(self, context):
        backend = super()._open_context(context)
        plain = backend.tokenize

        def tokenize(texts):
            ids, ends = [], []
            for t in texts:
                row, row_ends, i = [], [], 0
                while i < len(t):
                    step = 2 if t.startswith("12", i) else 1
                    row.append(1000 if step == 2 else ord(t[i]))
                    row_ends.append(i + step)
                    i += step
                ids.append(row)
                ends.append(row_ends)
            return ids, ends

        backend.tokenize = tokenize if context else plain
        return backend


def test_alignment_refuses_merging_tokenizers():
    cs = generate_canary_set(template="the code is {secret}", space="digits:3", count=1, references=0, seed=0)
    assert align(MergingMock().open_context("x"), cs, sample=1000) is None
