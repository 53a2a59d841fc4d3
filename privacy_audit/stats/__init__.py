"""Pure statistics of an audit: exposure, exact permutation nulls, ROC, intervals, bounds, epsilon, fits.

Every module here imports only the standard library, numpy, scipy and `privacy_audit.errors`; functions take
arrays and numbers (keyword-only where several arrays meet) and return numbers, arrays or frozen dataclasses of
them, never a model, a file or a report. Inputs are checked at the boundary by one helper (`_validation.finite`):
values must be finite and arrays long enough, else an `InputError` (a `ValueError`) is raised before any work.

Undefined cases are decided once, as scikit-learn's metrics do: a statistic that has no meaning for its input
(an AUC with no members, a permutation null with no references, a mean of an empty sample) raises `InputError`,
except where a report needs a row for the case, where the function returns None (shown as "n/a") and says so in
its docstring (`intervals.betting_mean_ci` for fewer than two values, `intervals.auc_ci` without both classes,
`protocol.tpr_at_rank_fpr` when no rank is below the false-positive budget).
"""
