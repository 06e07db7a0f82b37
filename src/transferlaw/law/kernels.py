"""The law's prediction, Jacobian and the fit's objective as compiled loops (numba).

Every form of :mod:`transferlaw.law.forms` is one family, L = (A·(p + c_p)^-α + G)·(f + c_f)^-β [+ E], so one
pair of kernels serves them all, told the form by a small layout vector (:func:`layout`). Per row of
parameters the p-terms are computed once per distinct p and the f-terms once per distinct f (15 and 10 on
the paper's 150-run grid), then each point costs one exp and one log1p.

Why compiled: the fit's inner loop (:meth:`transferlaw.law.fit._Problem.evaluate`) was a dozen numpy passes
over (rows, points, parameters) arrays, each small enough that numpy's per-pass cost and the memory
traffic of the (rows, parameters, points) Jacobian dominated; cross-validation solves some 10^5 such
problems. Here the objective, its gradient and the Gauss–Newton/IRLS curvature J^T W J are accumulated
point by point without storing the Jacobian, and points of weight zero (a cross-validation fold's test
runs, a bootstrap resample's missing runs) cost nothing. ``tests/test_laws.py`` checks both kernels
against finite differences and against each other.
"""

from __future__ import annotations

import numba as nb
import numpy as np

#: how a shift enters: log(x), log(1 + x), or log(x + c) with c = e^s a free parameter
SHIFT_NONE, SHIFT_ONE, SHIFT_FREE = 0, 1, 2
#: free parameter order of every form (laws.LawForm.param_names): A, alpha, G, beta, [E], [c_p], [c_f]
_A, _ALPHA, _G, _BETA, _E = 0, 1, 2, 3, 4
#: every kernel: compiled once per machine and cached; float errors as numpy has them (inf and nan, which the
#: objective turns into +inf, not exceptions); fused multiply-adds allowed
_JIT = dict(cache=True, error_model="numpy", fastmath={"contract"})


@nb.njit(**_JIT, inline="always")
def _clip(x: float, bound: float) -> float:
    return min(max(x, -bound), bound)


@nb.njit(**_JIT, inline="always")
def _shift(kind: int, x: float, s: float, bound: float) -> tuple[float, float]:
    """log(x + c) and d log(x + c) / d log c, for ``x`` as :func:`shift_values` gives it."""
    if kind != SHIFT_FREE:
        return x, 0.0
    c = np.exp(_clip(s, bound))
    return np.log(x + c), c / (x + c)


def shift_values(kind: int, x: np.ndarray) -> np.ndarray:
    """What the kernels take for the distinct values ``x`` of p (or f): log x and log(1 + x) for the fixed
    shifts, computed once per problem rather than per row and iteration; x itself for a free shift."""
    if kind == SHIFT_NONE:
        with np.errstate(divide="ignore"):
            return np.log(x)
    return np.log1p(x) if kind == SHIFT_ONE else np.asarray(x, dtype=float)


@nb.njit(**_JIT, inline="always")
def _log_add(x: float, y: float) -> tuple[float, float]:
    """log(e^x + e^y) and the share e^x / (e^x + e^y), from one exp."""
    d = x - y
    z = np.exp(-abs(d))
    share = 1.0 / (1.0 + z) if d >= 0 else z / (1.0 + z)
    return max(x, y) + np.log1p(z), share


@nb.njit(**_JIT)
def _row_terms(theta, lay, p_values, f_values, bound, lp, dlp, m, sig, lf, dlf):
    """The p-terms (log(p + c), its shift derivative, log of the bracket, the bracket's pre-training share)
    at each distinct p, and the f-terms at each distinct f, for one row of parameters."""
    p_kind, f_kind, i_cp, i_cf = lay[0], lay[1], lay[3], lay[4]
    a = _clip(theta[_A], bound)
    g = _clip(theta[_G], bound)
    alpha = theta[_ALPHA]
    s_p = theta[i_cp] if p_kind == SHIFT_FREE else 0.0
    s_f = theta[i_cf] if f_kind == SHIFT_FREE else 0.0
    for i in range(p_values.size):
        lp[i], dlp[i] = _shift(p_kind, p_values[i], s_p, bound)
        m[i], sig[i] = _log_add(a - alpha * lp[i], g)
    for j in range(f_values.size):
        lf[j], dlf[j] = _shift(f_kind, f_values[j], s_f, bound)


@nb.njit(**_JIT, inline="always")
def _point(theta, lay, bound, i, j, lp, dlp, m, sig, lf, dlf, jac_out):
    """log L at one point, and its Jacobian row written to ``jac_out`` (k,)."""
    has_e, i_cp, i_cf = lay[2], lay[3], lay[4]
    beta = theta[_BETA]
    t = m[i] - beta * lf[j]
    if has_e:
        out, tau = _log_add(t, _clip(theta[_E], bound))
    else:
        out, tau = t, 1.0
    ts = tau * sig[i]
    jac_out[_A] = ts
    jac_out[_ALPHA] = -ts * lp[i]
    jac_out[_G] = tau - ts
    jac_out[_BETA] = -tau * lf[j]
    if has_e:
        jac_out[_E] = 1.0 - tau
    if lay[0] == SHIFT_FREE:
        jac_out[i_cp] = -ts * theta[_ALPHA] * dlp[i]
    if lay[1] == SHIFT_FREE:
        jac_out[i_cf] = -tau * beta * dlf[j]
    return out


@nb.njit(**_JIT)
def predict(theta, lay, p_values, p_index, f_values, f_index, bound, jacobian, out, jac):
    """log L (N, n) into ``out`` and, with ``jacobian``, d log L / d theta (N, k, n) into ``jac``."""
    n_rows, k = theta.shape
    n_p, n_f = p_values.size, f_values.size
    lp, dlp, m, sig = np.empty(n_p), np.empty(n_p), np.empty(n_p), np.empty(n_p)
    lf, dlf = np.empty(n_f), np.empty(n_f)
    row = np.empty(k)
    for r in range(n_rows):
        _row_terms(theta[r], lay, p_values, f_values, bound, lp, dlp, m, sig, lf, dlf)
        for q in range(p_index.size):
            out[r, q] = _point(theta[r], lay, bound, p_index[q], f_index[q], lp, dlp, m, sig, lf, dlf, row)
            if jacobian:
                for a in range(k):
                    jac[r, a, q] = row[a]


@nb.njit(**_JIT)
def _objective_row(
    th, b, weights, pen_diag, lay, p_values, p_index, f_values, f_index, log_loss, delta, bound,
    derivs, grad, hess, scratch, row,
):  # fmt: skip
    """The objective of one row ``th`` of problem ``b``; with ``derivs`` its gradient and curvature into
    ``grad`` (k,) and ``hess`` (k, k). +inf where anything is not finite."""
    k = th.size
    n_p = p_values.size
    lp, dlp, m, sig = scratch[0, :n_p], scratch[1, :n_p], scratch[2, :n_p], scratch[3, :n_p]
    lf, dlf = scratch[4, : f_values.size], scratch[5, : f_values.size]
    _row_terms(th, lay, p_values, f_values, bound, lp, dlp, m, sig, lf, dlf)
    total = 0.0
    if derivs:
        grad[:] = 0.0
        hess[:, :] = 0.0
    for q in range(p_index.size):
        w = weights[b, q]
        if w == 0.0:
            continue
        res = _point(th, lay, bound, p_index[q], f_index[q], lp, dlp, m, sig, lf, dlf, row) - log_loss[q]
        psi = _clip(res, delta)
        total += w * psi * (res - 0.5 * psi)  # Huber: r²/2 where |r| <= δ, δ(|r| - δ/2) beyond
        if derivs:
            gw = w * psi
            hw = w * delta / max(abs(res), delta)  # IRLS weight min(1, δ/|r|)
            for a in range(k):
                grad[a] += gw * row[a]
                ha = hw * row[a]
                for c in range(a, k):
                    hess[a, c] += ha * row[c]
    finite = True
    for a in range(k):
        d = pen_diag[b, a]
        total += 0.5 * d * th[a] * th[a]
        if derivs:
            grad[a] += d * th[a]
            hess[a, a] += d
            finite = finite and np.isfinite(grad[a])
            for c in range(a, k):
                hess[c, a] = hess[a, c]
                finite = finite and np.isfinite(hess[a, c])
    return total if finite and np.isfinite(total) else np.inf


def scratch(p_values: np.ndarray, f_values: np.ndarray) -> np.ndarray:
    return np.empty((6, max(p_values.size, f_values.size)))


@nb.njit(**_JIT)
def objective(
    theta, prob, weights, pen_diag, lay, p_values, p_index, f_values, f_index, log_loss, delta, bound,
    derivs, obj, grad, hess, scratch,
):  # fmt: skip
    """The fit's objective for rows ``theta`` (N, k) of problems ``prob`` (N,): the weighted sum of Huber
    losses of the log residuals plus 0.5·Σ pen_diag·θ² (``pen_diag`` (B, k) per problem), into ``obj``
    (N,); with ``derivs`` also its gradient (N, k) and the IRLS curvature J^T diag(w·ω) J + diag(pen_diag)
    (N, k, k). A row whose objective or derivatives are not finite gets an objective of +inf."""
    k = theta.shape[1]
    row = np.empty(k)
    g0, h0 = np.empty(k), np.empty((k, k))
    for r in range(theta.shape[0]):
        g, h = (grad[r], hess[r]) if derivs else (g0, h0)
        obj[r] = _objective_row(
            theta[r], prob[r], weights, pen_diag, lay, p_values, p_index, f_values, f_index, log_loss,
            delta, bound, derivs, g, h, scratch, row,
        )  # fmt: skip


@nb.njit(**_JIT)
def _cholesky_solve(h, rhs, out):
    """Solve h·out = rhs for a symmetric positive definite h (k, k), in place of a copy; False if h is not
    numerically positive definite."""
    k = rhs.size
    low = h.copy()
    for j in range(k):
        s = low[j, j]
        for c in range(j):
            s -= low[j, c] * low[j, c]
        if not s > 0.0:
            return False
        low[j, j] = np.sqrt(s)
        for i in range(j + 1, k):
            s = low[i, j]
            for c in range(j):
                s -= low[i, c] * low[j, c]
            low[i, j] = s / low[j, j]
    for i in range(k):  # forward: L y = rhs
        s = rhs[i]
        for c in range(i):
            s -= low[i, c] * out[c]
        out[i] = s / low[i, i]
    for i in range(k - 1, -1, -1):  # back: L^T out = y
        s = out[i]
        for c in range(i + 1, k):
            s -= low[c, i] * out[c]
        out[i] = s / low[i, i]
    return np.isfinite(out).all()


@nb.njit(**_JIT)
def levenberg_marquardt(
    rows, n_iter, theta, obj, grad, hess, lam, small_steps, iters, done, converged,
    prob, weights, pen_diag, lay, p_values, p_index, f_values, f_index, log_loss, delta, bound, box, ftol,
    scratch,
):  # fmt: skip
    """Up to ``n_iter`` damped Gauss–Newton/IRLS iterations of each row in ``rows``, in place.

    A step solves (H + λ·max(diag H, floor)) s = -g and is kept only where it lowers the exact objective;
    λ shrinks by 3 after a kept step and grows by 8 after a rejected one. A row has converged when its
    objective stopped moving (relative gain <= ``ftol``) over three kept steps in a row, or when no step of
    any length lowers it (λ > 1e10): a local minimum.
    """
    k = theta.shape[1]
    h = np.empty((k, k))
    step, trial, t_grad, t_hess = np.empty(k), np.empty(k), np.empty(k), np.empty((k, k))
    row = np.empty(k)
    for r in rows:
        b = prob[r]
        for _ in range(n_iter):
            if done[r]:
                break
            top = 0.0
            for a in range(k):
                top = max(top, hess[r, a, a])
            floor = 1e-12 * top + 1e-300
            h[:, :] = hess[r]
            for a in range(k):
                h[a, a] += lam[r] * max(hess[r, a, a], floor)
                step[a] = -grad[r, a]
            if not _cholesky_solve(h, step.copy(), step):
                step[:] = 0.0  # never expected (the damping is positive): a zero step, which is rejected
            for a in range(k):
                trial[a] = min(max(theta[r, a] + step[a], -box[a]), box[a])
            t_obj = _objective_row(
                trial, b, weights, pen_diag, lay, p_values, p_index, f_values, f_index, log_loss, delta,
                bound, True, t_grad, t_hess, scratch, row,
            )  # fmt: skip
            gain = obj[r] - t_obj
            accept = np.isfinite(t_obj) and gain > 0
            if accept:
                theta[r] = trial
                obj[r] = t_obj
                grad[r] = t_grad
                hess[r] = t_hess
                lam[r] = max(lam[r] / 3.0, 1e-12)
                small_steps[r] = small_steps[r] + 1 if gain <= ftol * (abs(t_obj) + 1e-30) else 0
            else:
                lam[r] *= 8.0
            iters[r] += 1
            if small_steps[r] >= 3 or lam[r] > 1e10:
                converged[r] = True
                done[r] = True
