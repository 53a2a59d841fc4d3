"""Rare-token canaries, in the spirit of Panda et al. (ICLR 2025): secrets the model finds unlikely a priori, so that
one a teacher copies stands out against references that no prompt makes likely. The secrets are `RARE_WORDS` words,
each one of the `RARE_POOL` whole-word tokens (a space, then 4 to 12 lower-case letters) that the model finds least
likely after the template's text before its slot. They are chosen with the model alone, before any private data is
read, and written into the set's space (`r1=words:...;r2=words:...`), so the set needs no file and no model to be
read again.
"""

from __future__ import annotations

import re

import numpy as np

from privacy_audit.canaries.canary import PLACEHOLDER, SLOT
from privacy_audit.errors import InputError
from privacy_audit.models.base import LanguageModel

RARE_WORDS = 2  # words a secret: 512^2, about 2.6e5 secrets (18 bits)
RARE_POOL = 512  # the least likely whole-word tokens each word is drawn from
WORD = re.compile(r" [a-z]{4,12}")


def rare_design(template: str, model: LanguageModel) -> tuple[str, str]:
    """The template with its `{secret}` slot made `RARE_WORDS` slots, and their product space over the pool of the
    model's least likely whole-word tokens after the text before the slot."""
    if PLACEHOLDER.findall(template) != [SLOT.strip("{}")]:
        raise InputError("the rare design fills one {secret} slot with rare words: give a template with exactly that "
                         "slot")
    before = template[: template.index(SLOT)]
    model.require("score")
    context = model.open_context(before.rstrip(" "))
    if not context.can_search or not context.lists_vocabulary:
        raise InputError(f"the rare design ranks the words of a model's vocabulary, which {model.name} "
                         f"({model.backend}) does not list; use an in-process model (embedded, hf:)")
    words = {i: text for i, text in context.vocabulary().items() if WORD.fullmatch(text)}
    if len(words) < RARE_POOL:
        raise InputError(f"{model.name} has {len(words)} whole-word tokens (a space, then 4 to 12 lower-case "
                         f"letters); the rare design needs {RARE_POOL}")
    ids = np.array(sorted(words), dtype=np.int64)
    logp = context.search([context.tail_tokens()], ids)[0]
    rarest = ids[np.argsort(logp, kind="stable")[:RARE_POOL]]
    pool = ",".join(sorted(words[int(i)].strip() for i in rarest))
    names = [f"r{k + 1}" for k in range(RARE_WORDS)]
    filled = template.replace(SLOT, " ".join("{" + n + "}" for n in names))
    return filled, ";".join(f"{n}=words:{pool}" for n in names)
