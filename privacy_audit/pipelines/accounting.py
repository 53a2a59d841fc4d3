"""Differential-privacy accounting of a Gaussian mechanism composed over many releases, by Google's `dp-accounting`
(Renyi DP, converted to (epsilon, delta)): the noise a target needs and the epsilon a noise gives. Imported lazily,
so `import privacy_audit` stays light."""

from __future__ import annotations

import math
from dataclasses import dataclass

ACCOUNTANT = "dp-accounting RdpAccountant (Renyi DP of the composed Gaussian mechanism)"


@dataclass(frozen=True)
class GaussianLedger:
    """`steps` releases of the Gaussian mechanism at `noise_multiplier` (noise std / L2 sensitivity), accounted to
    (`epsilon`, `delta`); `ledger` is the composed event as the accountant writes it."""

    noise_multiplier: float
    steps: int
    epsilon: float
    delta: float
    ledger: str

    @property
    def mu(self) -> float:
        """The same releases in Gaussian DP: k Gaussian releases at noise multiplier s are sqrt(k)/s-GDP, exactly."""
        return math.sqrt(self.steps) / self.noise_multiplier


def _event(noise_multiplier: float, steps: int):  # noqa: ANN202 (a dp_accounting.DpEvent, imported lazily)
    import dp_accounting

    return dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(noise_multiplier), steps)


def gaussian_epsilon(noise_multiplier: float, steps: int, delta: float) -> GaussianLedger:
    """The epsilon at `delta` of `steps` Gaussian releases at `noise_multiplier`."""
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    event = _event(noise_multiplier, steps)
    accountant.compose(event)
    return GaussianLedger(noise_multiplier, steps, float(accountant.get_epsilon(delta)), delta, str(event))


def calibrate_gaussian(epsilon: float, delta: float, steps: int) -> GaussianLedger:
    """The smallest noise multiplier whose `steps` Gaussian releases are (`epsilon`, `delta`)-DP, and its ledger."""
    import dp_accounting
    from dp_accounting import rdp

    sigma = dp_accounting.calibrate_dp_mechanism(rdp.RdpAccountant, lambda s: _event(s, steps), epsilon, delta)
    return gaussian_epsilon(float(sigma), steps, delta)
