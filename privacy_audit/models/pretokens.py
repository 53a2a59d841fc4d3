"""What a tokenizer's own rules say about its tokens, read from a `tokenizers.Tokenizer` (no torch): each token's text,
and the digit groups its pre-tokenizer cuts (tokens never cross a pre-token, so a search can skip the paths that do)."""

from __future__ import annotations

from typing import Any

# Digit runs of every length to 13, each between texts that end and begin a pre-token differently.
_AROUND = (("", ""), ("a ", " b"), ("x", "y"), ("-", "."), ("\n", "\n"), ("$", "%"), ("é", "ü"), ("  ", "  "))
_DIGITS = "4829163057318"
ASCII_DIGITS = frozenset("0123456789")


def token_texts(backend: Any, special: set[int]) -> dict[int, str]:
    """Each ordinary token's text where it follows other text: decoded after an anchor token, so a sentencepiece
    word-start mark reads as the space it is there; special tokens and tokens that are part of a character
    (byte-level pieces of a longer UTF-8 sequence) are left out."""
    anchor = backend.encode("a", add_special_tokens=False).ids[:1]
    base = backend.decode(anchor, skip_special_tokens=False)
    twice = backend.decode(anchor * 2, skip_special_tokens=False)
    # what the decoder puts between two tokens (a word-level decoder joins them with a space): not the token's text
    if base and twice.startswith(base) and twice.endswith(base):
        base += twice[len(base) : len(twice) - len(base)]
    ids = [i for i in range(backend.get_vocab_size(with_added_tokens=True)) if i not in special]
    texts = backend.decode_batch([anchor + [i] for i in ids], skip_special_tokens=False)
    return {i: t[len(base) :] for i, t in zip(ids, texts) if t.startswith(base) and len(t) > len(base)
            and "\ufffd" not in t}


def digit_groups(backend: Any) -> int | None:
    """K where the pre-tokenizer cuts every run of the digits 0-9 into groups of K from the run's left and no
    pre-token holds a digit with another character (Llama 3: 3; SmolLM2, Qwen 2: 1), checked on runs of 1 to 13
    digits in eight surroundings; None where it does otherwise (GPT-2 joins a space to a run and merges runs whole),
    has no pre-tokenizer, or normalizes the probes."""
    pre = backend.pre_tokenizer
    if pre is None:
        return None
    size = None
    for n in range(len(_DIGITS), 0, -1):  # the longest run first: its first group is K
        for before, after in _AROUND:
            text = before + _DIGITS[:n] + after
            if backend.normalizer is not None and backend.normalizer.normalize_str(text) != text:
                return None
            groups = []
            for _, (start, end) in pre.pre_tokenize_str(text):
                kinds = {c in ASCII_DIGITS for c in text[start:end]}
                if len(kinds) > 1:
                    return None
                if kinds == {True}:
                    groups.append(end - start)
            size = size or groups[0]
            if groups != [size] * (n // size) + ([n % size] if n % size else []):
                return None
    return size
