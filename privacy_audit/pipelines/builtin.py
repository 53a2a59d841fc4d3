"""The built-in pipelines: raw (worst case), zero-shot (floor), prompt-file, and instructions (the paper's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from privacy_audit._io import read_text
from privacy_audit.errors import InputError, PipelineError
from privacy_audit.models.base import LanguageModel
from privacy_audit.pipelines.base import (
    Positive, Record, TeacherArtifact, TeachingOutput, Temperature, format_example, pipeline, select_examples,
)

# Figure 2 of Mohtashami et al. (2023), "Social Learning", quoted; the examples replace <Original Examples>.
INSTRUCTION_PROMPT = (
    "The following examples are privately shared with you and will not be given to the participants. "
    "Describe the format (any special markings used), and general patterns and any other useful generic "
    "notes that you can find based on these examples. What you write will be the only hint given to the "
    "participant and they are expected to output correct replies in the right format.\n"
    "{examples}\n"
    "Task format with detailed instructions:"
)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs: the units whose distance to the private prompt is measured."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


@pipeline("raw", needs=("data",))
def raw(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, examples: Positive = 8,
    labels: Mapping[str, str] | None = None,
) -> TeachingOutput:
    """The private examples themselves as the prompt: the paper's high bar and the privacy worst case."""
    used = select_examples(records, examples, seed)
    prompt = "\n\n".join(format_example(records[i], labels) for i in used)
    return TeachingOutput(
        prompt=prompt, pipeline="raw", options={"examples": examples, "labels": dict(labels or {})},
        seed=seed, model=None, labels=dict(labels or {}), used_records=tuple(used),
    )


@pipeline("zero-shot", needs=())
def zero_shot(records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0) -> TeachingOutput:
    """No teaching at all: an empty prompt, the floor every other pipeline is compared with."""
    return TeachingOutput(prompt="", pipeline="zero-shot", options={}, seed=seed, model=None, used_records=())


@pipeline("prompt-file", needs=(), files=lambda options: [str(options.get("path", ""))])
def prompt_file(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, path: str = ""
) -> TeachingOutput:
    """Audit a teaching prompt that already exists (a file written by any process)."""
    if not path:
        raise InputError("pipeline 'prompt-file' needs the prompt's path (--prompt-file)")
    text = read_text(path, what="prompt file")
    return TeachingOutput(prompt=text, pipeline="prompt-file", options={"path": str(Path(path))}, seed=seed, model=None)


@pipeline("instructions", needs=("model", "data"))
def instructions(
    records: Sequence[Record], *, model: LanguageModel | None = None, seed: int = 0, examples: Positive = 8,
    labels: Mapping[str, str] | None = None, temperature: Temperature = 0.0, max_new_tokens: Positive = 256,
    batch_size: Positive | None = None,
) -> TeachingOutput:
    """One teacher writes instructions from `examples` private examples with the paper's Figure 2 prompt.

    Its answer, produced through the model's chat template, is the student's whole prompt.
    """
    if model is None:
        raise InputError("pipeline 'instructions' needs a model (--model)")
    used = select_examples(records, examples, seed)
    shown = "\n\n".join(format_example(records[i], labels) for i in used)
    request = INSTRUCTION_PROMPT.format(examples=shown)
    (answer,) = model.generate(
        [[{"role": "user", "content": request}]], max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        batch_size=batch_size,
    )
    if not answer.strip():
        raise PipelineError(
            "the teacher wrote no instructions (empty generation); try temperature > 0 or another model"
        )
    return TeachingOutput(
        prompt=answer,
        pipeline="instructions",
        options={
            "examples": examples, "labels": dict(labels or {}), "temperature": temperature,
            "max_new_tokens": max_new_tokens,
        },
        seed=seed,
        model=model.info(),
        labels=dict(labels or {}),
        used_records=tuple(used),
        artifacts=(
            TeacherArtifact(teacher=0, records=tuple(used), private=request, generated=tuple(paragraphs(answer))),
        ),
    )
