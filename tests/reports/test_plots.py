"""Plots only draw: each shows exactly the arrays it is given, inside its axes, and renders to a PNG."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from privacy_audit.reports.plots import (  # noqa: E402  (after the skip: matplotlib is optional to import here)
    exposure_plot, png, privacy_utility_plot, rank_cdf_plot, roc_plot, teacher_plot,
)

PNG = b"\x89PNG\r\n\x1a\n"


def test_exposure_plot_draws_every_planted_canary_inside_its_axes():
    """A canary at the space's maximum (13.29 bits of 10^4) is drawn inside the plot, not on its edge."""
    fig = exposure_plot(planted=[13.2877, 2.0], references=[0.5, 1.0, 1.5, 3.0], max_bits=13.2877, null_mean=1.44)
    ax = fig.axes[0]
    low, high = ax.get_xlim()
    drawn = [line.get_xdata()[0] for line in ax.lines]
    assert sorted(drawn) == pytest.approx(sorted([13.2877, 2.0, 1.44]))
    assert all(low < x < high for x in drawn)
    assert sum(p.get_height() for p in ax.patches) == 4  # every reference counted in the histogram
    assert png(fig).startswith(PNG)


def test_rank_cdf_roc_utility_and_teacher_plots_show_their_inputs():
    ranks = [0, 3, 3, 9]
    ax = rank_cdf_plot(ranks=ranks, n_candidates=10).axes[0]
    step = ax.lines[0]
    assert list(step.get_xdata()) == [0, 0, 3, 3, 9] and list(step.get_ydata()) == [0, 0.25, 0.5, 0.75, 1.0]
    fpr, tpr = [0.0, 0.5, 1.0], [0.0, 0.75, 1.0]
    roc = roc_plot([("loss", fpr, tpr, 0.8125), ("blind", [0.0, 1.0], [0.0, 1.0], 0.5)]).axes[0]
    assert list(roc.lines[0].get_xdata()) == fpr and list(roc.lines[0].get_ydata()) == tpr
    assert roc.lines[1].get_linestyle() == "--"  # the blind control dashed
    legend = [t.get_text() for t in roc.get_legend().get_texts()]
    assert legend[:2] == ["loss, AUC = 0.81", "blind, AUC = 0.50"]
    utility = privacy_utility_plot(labels=["raw", "zero"], exposure=[13.0, 1.0], accuracy=[0.9, 0.5], max_bits=13.3)
    points = utility.axes[0].collections[0].get_offsets()
    assert np.allclose(points, [[13.0, 0.9], [1.0, 0.5]])
    bars = teacher_plot(teachers=[0, 1], mean_distance=[0.2, 0.7], verbatim=[1, 0]).axes[0].patches
    assert [b.get_height() for b in bars] == pytest.approx([0.2, 0.7])
