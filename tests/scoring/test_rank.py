"""Which mode a scoring runs in, the pre-flight checks of a mode, and exact ranks against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from privacy_audit import MockModel, ScoringOptions, generate_canary_set
from privacy_audit.errors import InputError
from privacy_audit.scoring.rank import check_mode, rank_exact, resolve_mode


def test_auto_is_exact_up_to_the_smaller_of_the_limit_and_the_scorers_budget():
    cs = generate_canary_set(template="c {secret}", space="digits:3", count=1, references=2, seed=0)
    assert resolve_mode(cs, ScoringOptions()) == "exact"
    assert resolve_mode(cs, ScoringOptions(), exact_budget=999) == "bounded"
    assert resolve_mode(cs, ScoringOptions(max_exact=999)) == "bounded"
    assert resolve_mode(cs, ScoringOptions(mode="sampled")) == "sampled"


def test_a_mode_the_design_cannot_run_is_refused_before_any_work():
    cs = generate_canary_set(template="c {secret}", space="digits:3", count=1, references=0, seed=0)
    with pytest.raises(InputError, match="more than the exact-mode limit of 10"):
        check_mode(cs, ScoringOptions(mode="exact", max_exact=10))
    with pytest.raises(InputError, match="sampled mode needs references"):
        check_mode(cs, ScoringOptions(), "sampled")
    with pytest.raises(InputError, match="scoring option max_exact"):
        ScoringOptions.checked(max_exact=0)


def test_exact_ranks_are_the_brute_force_ranks_ties_against_the_canary():
    cs = generate_canary_set(template="c {secret}", space="digits:2", count=2, references=3, seed=4)
    context = MockModel().open_context(f"c {cs.planted[0].secret}\n")
    scores = context([cs.fill(s) for s in cs.secret_space.enumerate()]).totals(len(cs.prefix))
    own = scores[[cs.secret_space.index(c.secret) for c in cs.canaries]]
    ranking = rank_exact(context, cs, own, ScoringOptions(), None)
    assert list(ranking.ranks) == [int(np.sum(scores >= s)) for s in own]
    assert ranking.ranks[0] == 1
