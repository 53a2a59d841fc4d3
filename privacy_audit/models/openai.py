"""`openai:<model>`: any OpenAI-compatible endpoint as a teacher (the OpenAI API, vLLM, SGLang, llama.cpp's or
llama-cpp-python's server, LM Studio, a gateway). Chat completions for chat prompts; plain-text prompts go to
chat as one user message, or to /completions (`prompt_api = "completions"`) where the server has it. Each
sample sends its own seed (best effort: the report says so and records the server's system_fingerprint) and
asks for the log-probabilities of what it sampled, which teachers that keep their likeliest samples use.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Literal

from pydantic import Field, JsonValue, PlainSerializer

from privacy_audit._io import make_folder, read_json, write_json
from privacy_audit._paths import cache_root
from privacy_audit._registry import register
from privacy_audit.errors import InputError, ModelError
from privacy_audit.models.base import Completion, Generator, LanguageModel, ModelInfo, Prompt, ScoringPolicy
from privacy_audit.models.http import Endpoint, public_url, redact, resolve
from privacy_audit.models.served import START_TEXTS, Probe, Served
from privacy_audit.models.served_context import ServedScorer
from privacy_audit.models.served_walk import ServedWalk, WalkKind, open_walk

# A URL option: kept whole for the requests, written without credentials wherever the options are recorded.
PublicURL = Annotated[str, PlainSerializer(public_url, when_used="json")]
SEEDING = ("best effort: each sample sends its own seed, which the server may not honour; reruns are reproduced by the "
           "teaching cache")


class OpenAIModel(LanguageModel, Generator, ServedScorer):
    """A model behind an OpenAI-compatible API. It generates (a teacher); it scores (a served scorer) only where a
    probe shows the server gives aligned prompt log-probabilities (`models.served`)."""

    backend = "openai"

    def __init__(self, model: str, endpoint: Endpoint, *, prompt_api: Literal["chat", "completions"] = "chat",
                 logprobs: bool = True, served: Served | None = None, start_texts: tuple[str, ...] = START_TEXTS,
                 policy: ScoringPolicy | None = None, cache: bool = True,
                 next_tokens: WalkKind | Literal["auto", "off"] = "auto", exact_walk_budget: int = 20_000,
                 next_token_tolerance: float = 0.3) -> None:
        if not model:
            raise ModelError("openai:<model> needs a model name, e.g. openai:gpt-4o-mini")
        self.name = model
        self.endpoint = endpoint
        self.prompt_api = prompt_api
        self.logprobs = logprobs
        self.served = served or Served(endpoint, model)
        self.start_texts = start_texts
        self._policy = policy or ScoringPolicy()
        self.fingerprints: set[str] = set()
        self.cache = cache
        self.next_tokens = next_tokens
        self.exact_walk_budget = exact_walk_budget
        self.next_token_tolerance = next_token_tolerance
        self.walk_note = ""

    def probe(self) -> Probe:
        """The echo probe, then (once, where it passed) the next-token requests the server answers (`served_walk`)."""
        first = self._probe is None
        probe = super().probe()
        if first and probe.ok:
            if self.next_tokens == "off":
                self.walk_note = "not used (next_tokens=off)"
            else:
                found = open_walk(self.served, self.next_tokens, self.next_token_tolerance)
                self.walk, self.walk_note = (found, found.kind) if isinstance(found, ServedWalk) else (None, found)
        return probe

    @property
    def policy(self) -> ScoringPolicy:  # type: ignore[override]
        """Its scoring policy; where the server answers next-token requests, `auto` scores exactly up to
        exact_walk_budget candidates (a request per internal node of the secrets' tree, not per candidate), and each
        token of a canary asked again may differ by next_token_tolerance (llama.cpp's numbers move with the batch a
        token is evaluated in)."""
        if self.probe().ok and self.walk is not None:
            return replace(self._policy, exact_budget=self.exact_walk_budget,
                           stability_per_token=self.next_token_tolerance)
        return self._policy

    def info(self) -> ModelInfo:
        probe = self._probe
        options: dict[str, str | int | float | bool | None] = {"prompt_api": self.prompt_api}
        if probe is not None:
            options |= {"score_probe": probe.reason, "start_text": probe.start_text or None,
                        "requests": self.endpoint.requests, "prompt_tokens_scored": self.served.tokens_sent,
                        "next_tokens": self.walk_note or None}
        if isinstance(self.walk, ServedWalk):
            options |= {"next_token_requests": self.walk.requests, "next_token_prompt_tokens": self.walk.sent,
                        "next_token_tokens_past_common_prefix": self.walk.evaluated}
        return ModelInfo(
            backend=self.backend, name=self.name, endpoint=self.endpoint.public,
            served_model=", ".join(sorted(self.served.served_as)) or None,
            system_fingerprint=", ".join(sorted(self.fingerprints)) or None, seeding=SEEDING, options=options,
        )

    def _generate(
        self, prompts: list[Prompt], *, max_new_tokens: int, temperature: float, seeds: list[int],
        stop: tuple[str, ...], batch_size: int | None,
    ) -> list[Completion]:
        self.served.check_model()
        jobs = list(zip(prompts, seeds))
        return self.endpoint.map(
            lambda job: self._one(job[0], job[1], max_new_tokens, temperature, stop), jobs, "generating"
        )

    def _one(
        self, prompt: Prompt, seed: int, max_new_tokens: int, temperature: float, stop: tuple[str, ...]
    ) -> Completion:
        """One sample: its text, and the log2-probability of its tokens when the server reports them."""
        common: dict[str, JsonValue] = {"model": self.name, "max_tokens": max_new_tokens, "temperature": temperature,
                                  "seed": int(seed) % 2**31}
        if stop:
            common["stop"] = list(stop)[:4]
        if isinstance(prompt, str) and self.prompt_api == "completions":
            asked = {"logprobs": 1} if self.logprobs else {}
            data = self._post("/completions", {**common, "prompt": prompt, **asked})
            choice = _first_choice(data)
            values = (choice.get("logprobs") or {}).get("token_logprobs") or []
            text = choice.get("text")
        else:
            messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
            data = self._post(
                "/chat/completions", {**common, "messages": messages, **({"logprobs": True} if self.logprobs else {})}
            )
            choice = _first_choice(data)
            values = [t.get("logprob") for t in ((choice.get("logprobs") or {}).get("content") or [])]
            text = (choice.get("message") or {}).get("content")
        if not isinstance(text, str):
            raise ModelError(f"{self.endpoint.public} returned a completion without text")
        text = redact(text, [self.endpoint.key])  # a server that echoes the key never puts it in a prompt or cache
        if isinstance(data.get("system_fingerprint"), str):
            self.fingerprints.add(data["system_fingerprint"])
        self.served.answered(data)
        known = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        logprob = sum(known) / math.log(2) if values and len(known) == len(values) else None
        return Completion(text, logprob, len(values) if logprob is not None else 0)


    def _post(self, path: str, body: dict[str, JsonValue]) -> dict[str, JsonValue]:
        """One request's answer, kept in the completion cache (keyed on the endpoint without credentials, the path
        and the whole request; never the key), so that work already done survives a later step's failure: a rerun
        sends only what is not cached. Errors are never cached; an entry that cannot be read is replaced."""
        if not self.cache:
            return self.endpoint.post(path, body)
        key = json.dumps({"endpoint": self.endpoint.public, "path": path, "body": body}, sort_keys=True)
        entry = cache_root() / "completions" / f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.json"
        if entry.is_file():
            try:
                data = read_json(entry, what="cached completion")
                if isinstance(data, dict):
                    return data
            except InputError:
                pass
        data = self.endpoint.post(path, body)
        make_folder(entry.parent, what="cache folder")
        write_json(entry, data, private=True, staged=False, replaces_input=True)
        return data


def _first_choice(data: Mapping[str, JsonValue]) -> dict[str, JsonValue]:
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ModelError("the server's answer has no choices")
    return choices[0]


@register("backend", "openai", fixed=("model",))
def _openai_backend(
    model: str, *, base_url: PublicURL | None = None, api_key_env: str | None = None,
    max_connections: Annotated[int, Field(ge=1, le=256)] = 4, timeout: Annotated[float, Field(gt=0, le=3600)] = 120.0,
    max_retries: Annotated[int, Field(ge=0, le=20)] = 5, max_retry_wait: Annotated[float, Field(ge=0, le=600)] = 60.0,
    prompt_api: Literal["chat", "completions"] = "chat", logprobs: bool = True,
    exact_budget: Annotated[int, Field(ge=1)] = 1_000, prompts_per_request: Annotated[int, Field(ge=1, le=1024)] = 1,
    echo_max_tokens: Annotated[int, Field(ge=0, le=1)] = 1, start_text: str | None = None,
    stability_tolerance: Annotated[float, Field(ge=0)] = 0.01, cache: bool = True, check_model: bool = True,
    next_tokens: Literal["auto", "off", "vllm", "sglang", "top-k"] = "auto",
    exact_walk_budget: Annotated[int, Field(ge=1)] = 20_000,
    next_token_tolerance: Annotated[float, Field(ge=0, le=64)] = 0.3,
) -> OpenAIModel:
    """An OpenAI-compatible endpoint (openai:<model>): a teacher, and a scorer where the server proves it can.

    base_url (else $OPENAI_BASE_URL, else the OpenAI API); the key from the variable api_key_env names
    ($OPENAI_API_KEY only for the OpenAI API or $OPENAI_BASE_URL's URL); requests in flight, timeout and
    retries; chat or /completions for plain-text prompts; sampled tokens' log-probabilities. Scoring: the
    most candidates `auto` scores exactly, prompts per request (1 for llama-cpp-python, more for vLLM),
    max_tokens of an echo request (1; vLLM takes 0), the start token's text (None: the probe tries common
    ones; "" for none), and the largest difference a rescored sample may show (bits); `cache`: keep each completion
    so a rerun after a failure sends only what is new; `check_model`: refuse a model name the server does not list;
    `next_tokens`: how to ask the server for next-token log-probabilities (auto: by what the server shows: top-k by
    token text for llama-cpp-python, SGLang's /generate, else vLLM's logprob_token_ids, then top-k; off: echo only),
    the most candidates `auto` then scores exactly,
    and how far (bits a token) its numbers may differ from the echo's or from themselves asked again (llama.cpp:
    up to 0.23 measured).
    """
    url, key = resolve(base_url, api_key_env)
    endpoint = Endpoint(url, key, key_from=api_key_env or ("OPENAI_API_KEY" if key else None), timeout=timeout,
                        max_connections=max_connections, max_retries=max_retries, max_retry_wait=max_retry_wait)
    served = Served(endpoint, model, per_request=prompts_per_request, echo_max_tokens=echo_max_tokens,
                    check_model=check_model)
    starts = START_TEXTS if start_text is None else ((start_text,) if start_text else ())
    policy = ScoringPolicy(exact_budget=exact_budget, stability_tolerance=stability_tolerance)
    return OpenAIModel(model, endpoint, prompt_api=prompt_api, logprobs=logprobs, served=served, start_texts=starts,
                       policy=policy, cache=cache, next_tokens=next_tokens, exact_walk_budget=exact_walk_budget,
                       next_token_tolerance=next_token_tolerance)

