"""Fit the partner model's weights on training needs: trained for order within a need, calibrated where shown.

Why not a plain logistic regression over every candidate of every need (the earlier fit): it spends itself on
the thousand hopeless candidates of each need, while the product is judged on the order of each need's first
ten. Here the weights are fitted *listwise*: for every training need, each real partner's softmax cross-entropy
against the need's other candidates that are not partners (partners do not compete with one another: a
consortium takes several), divided by their number so each need weighs the same, as it does in recall@10.
A listwise score has no level of its own, so a one-variable logistic regression (Platt scaling) over the first
``CALIBRATION_TOP`` candidates of every training need then maps it to a probability, calibrated where the
product shows confidences. The result is the same shape as before, weights and an intercept over the
features, so the engine's ``PartnerModel`` reads it unchanged and stays linear: monotone in every count (see
docs/matching.md for why that matters on held-out projects) and extrapolating to a need unlike any project as
a low probability. Measured against the earlier fit in docs/matching.md.
"""

from __future__ import annotations

import numpy as np

CALIBRATION_TOP = 30  # candidates per training need that the probability is calibrated on
L2 = 1e-3  # ridge on the standardised listwise weights


def fit_listwise(rows: list[np.ndarray], labels: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
    """``rows[i]``: the candidates of training need i (one row each), ``labels[i]``: 1 for its real partners.

    Returns (weights, intercept, base rate) of a logistic model over the raw features; the base rate is the
    share of all training candidates that are real partners, from which the 'no strong match' cut-off is set."""
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    nonempty = [(x, y) for x, y in zip(rows, labels, strict=True) if len(x)]
    with_partner = [x for x, y in nonempty if y.sum() > 0]  # a need without a real partner teaches no order
    if not with_partner:
        raise ValueError("no training need has a real partner among its candidates")
    pooled = np.vstack(with_partner)
    mean, scale = pooled.mean(axis=0), pooled.std(axis=0) + 1e-9
    needs = [((x - mean) / scale, y) for x, y in nonempty]  # standardised once, for the fit and the calibration
    teaching = [(z[y > 0], z[y == 0]) for z, y in needs if y.sum() > 0]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for partners, others in teaching:
            sp, so = partners @ w, others @ w
            top = max(sp.max(), so.max(initial=-np.inf))
            eo = np.exp(so - top)
            ep = np.exp(sp - top)
            norm = ep + eo.sum()  # each partner's own softmax: itself against every non-partner
            total -= np.sum(sp - top - np.log(norm)) / len(sp)
            grad -= (partners - (ep[:, None] * partners + (eo @ others)[None, :]) / norm[:, None]).sum(0) / len(sp)
        return total / len(teaching) + L2 * w @ w, grad / len(teaching) + 2 * L2 * w

    w = minimize(loss, np.zeros(pooled.shape[1]), jac=True, method="L-BFGS-B").x
    shown_scores, shown_labels = [], []
    for z, y in needs:
        s = z @ w
        top = np.argsort(-s, kind="stable")[:CALIBRATION_TOP]
        shown_scores.append(s[top])
        shown_labels.append(y[top])
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(np.concatenate(shown_scores)[:, None],
                                                         np.concatenate(shown_labels))
    slope, offset = float(platt.coef_[0][0]), float(platt.intercept_[0])
    weights = slope * w / scale
    intercept = offset - float(weights @ mean)
    base_rate = float(np.concatenate([y for _, y in needs]).mean())
    return weights, intercept, base_rate
