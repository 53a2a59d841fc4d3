"""Plots that only draw: each takes arrays already computed and returns a matplotlib Figure (Agg)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np


def _figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return fig, ax


def png(fig: Any) -> bytes:
    """The figure as PNG bytes (and closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def exposure_plot(*, planted: Sequence[float], references: Sequence[float], max_bits: float, null_mean: float) -> Any:
    """Planted canaries' exposure against the distribution of references scored the same way."""
    fig, ax = _figure()
    bins = np.linspace(0, max(max_bits, 1e-9), 27)
    if len(references):
        ax.hist(references, bins=bins, color="#9db4c0", label=f"references (n={len(references)})")
    for i, x in enumerate(planted):
        ax.axvline(x, color="#c0392b", lw=2, label="planted canaries" if i == 0 else None)
    ax.axvline(null_mean, color="black", ls="--", lw=1, label=f"null mean ({null_mean:.2f} bits)")
    margin = 0.03 * max(max_bits, 1.0)  # a canary at either end of the scale is drawn inside the axes, not on them
    ax.set_xlim(-margin, max_bits + margin)
    ax.set_xlabel("exposure (bits)")
    ax.set_ylabel("references")
    ax.set_title("Exposure: planted canaries vs never-planted references")
    ax.legend(fontsize=8)
    return fig


def rank_cdf_plot(*, ranks: Sequence[int], n_candidates: int) -> Any:
    """Empirical CDF of paper-protocol ranks (0..N-1) against the uniform null."""
    fig, ax = _figure()
    r = np.sort(np.asarray(ranks))
    ax.step(
        np.concatenate([[0], r]), np.arange(len(r) + 1) / max(len(r), 1), where="post", color="#c0392b",
        label="planted canaries",
    )
    ax.plot([0, n_candidates - 1], [0, 1], "k--", lw=1, label="null (uniform rank)")
    ax.set_xlabel(f"rank among {n_candidates - 1} comparisons (0 = most likely)")
    ax.set_ylabel("fraction of canaries")
    ax.set_title("Paper protocol: rank CDF")
    ax.legend(fontsize=8)
    return fig


def roc_plot(curves: Sequence[tuple[str, Sequence[float], Sequence[float], float]]) -> Any:
    """ROC curves of membership scores, private examples against held-out ones: (name, fpr, tpr, AUC) each; the
    blind control (named "blind") dashed."""
    fig, ax = _figure(4.6, 3.8)
    for name, fpr, tpr, auc in curves:
        ax.plot(fpr, tpr, ls="--" if name == "blind" else "-", lw=1.4, label=f"{name}, AUC = {auc:.2f}")
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1, label="chance")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("Membership attacks and the blind control")
    ax.legend(fontsize=7, loc="lower right")
    return fig


def privacy_utility_plot(
    *, labels: Sequence[str], exposure: Sequence[float], accuracy: Sequence[float], max_bits: float
) -> Any:
    """Each pipeline as a point: worst planted exposure (privacy cost) against student accuracy (utility)."""
    fig, ax = _figure(5.0, 3.8)
    ax.scatter(exposure, accuracy, color="#c0392b", zorder=3)
    for x, y, label in zip(exposure, accuracy, labels):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax.set_xlim(-0.3, max_bits + 0.3)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("max exposure of a planted canary (bits)")
    ax.set_ylabel("student accuracy")
    ax.set_title("Privacy vs utility across pipelines")
    ax.grid(alpha=0.3)
    return fig


def teacher_plot(*, teachers: Sequence[int], mean_distance: Sequence[float], verbatim: Sequence[int]) -> Any:
    """Per-teacher attribution: how close each teacher's generated text is to its private prompts."""
    fig, ax = _figure()
    x = np.arange(len(teachers))
    ax.bar(x, mean_distance, color="#9db4c0", label="mean distance to private prompt")
    for xi, d, v in zip(x, mean_distance, verbatim):
        if v:
            ax.annotate(
                f"{v} verbatim", (xi, d), ha="center", xytext=(0, 3), textcoords="offset points", fontsize=8,
                color="#c0392b",
            )
    ax.set_xticks(x, [str(t) for t in teachers])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("teacher")
    ax.set_ylabel("distance (0 = verbatim copy)")
    ax.set_title("Per-teacher attribution of generated text")
    ax.legend(fontsize=8)
    return fig
