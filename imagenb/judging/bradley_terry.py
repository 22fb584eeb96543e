"""Regularised Bradley-Terry ratings with bootstrap intervals, in numpy.

Why not a package: `choix` 0.4.1 and `evalica` 0.4.2 both pull in SciPy (tens of MB) for what
is, on a prompt grid (a handful of items, a few hundred battles), a 2x2-to-20x20 Newton solve.
This is the model Chatbot Arena fits (FastChat's `elo_analysis`): P(i beats j) =
sigmoid(theta_i - theta_j), ties count half a win each way, reported as `1000 + 400 *
log10(odds)`; plus an L2 penalty `alpha/2 * |theta|^2` (a Gaussian prior) so an item that
never lost keeps a finite rating, and 95% intervals from the 2.5% and 97.5% quantiles of
fits to battles resampled with replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ALPHA = 0.1  # prior sd ~3.2 in log-odds (~1,400 rating points): mild, but keeps fits finite
SCALE = 400 / math.log(10)  # natural log-odds -> rating points
BASE = 1000.0
BOOTSTRAP_ROUNDS = 1000

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Ratings:
    rating: Floats
    ci_low: Floats
    ci_high: Floats


def fit(n: int, a: Ints, b: Ints, score: Floats, alpha: float = ALPHA) -> Floats:
    """Log-strengths (mean 0) of `n` items from battles `a[k]` vs `b[k]` where `a` scored
    `score[k]` (1 win, 0.5 tie, 0 loss); Newton's method on the penalised log-likelihood."""
    theta = np.zeros(n)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(theta[b] - theta[a]))
        residual = score - p
        gradient = np.bincount(a, residual, n) - np.bincount(b, residual, n) - alpha * theta
        w = p * (1.0 - p)
        cells = n * n  # the negative Hessian, built flat: diagonal +w, off-diagonal -w
        flat = (
            np.bincount(a * (n + 1), w, cells)
            + np.bincount(b * (n + 1), w, cells)
            - np.bincount(a * n + b, w, cells)
            - np.bincount(b * n + a, w, cells)
        )
        curvature = flat.reshape(n, n) + alpha * np.eye(n)
        if alpha > 0:
            step = np.linalg.solve(curvature, gradient)
        else:  # singular (ratings are only known up to a constant): least squares
            step = np.linalg.lstsq(curvature, gradient, rcond=None)[0]
        theta += step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    centred: Floats = theta - theta.mean()
    return centred


def points(theta: Floats) -> Floats:
    out: Floats = BASE + SCALE * theta
    return out


def rate(
    n: int,
    a: Ints,
    b: Ints,
    score: Floats,
    *,
    rounds: int = BOOTSTRAP_ROUNDS,
    seed: int = 0,
    alpha: float = ALPHA,
) -> Ratings:
    """Ratings on the 400-point scale with bootstrap 95% intervals."""
    best = points(fit(n, a, b, score, alpha))
    if len(a) == 0:
        return Ratings(best, best.copy(), best.copy())
    rng = np.random.default_rng(seed)
    draws = np.empty((rounds, n))
    for r in range(rounds):
        pick = rng.integers(0, len(a), len(a))
        draws[r] = points(fit(n, a[pick], b[pick], score[pick], alpha))
    low, high = np.quantile(draws, [0.025, 0.975], axis=0)
    return Ratings(best, np.minimum(low, best), np.maximum(high, best))
