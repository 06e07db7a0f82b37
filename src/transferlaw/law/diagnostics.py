"""What a fit cannot tell: parameters at the optimiser's bound, flat directions, unidentified parameters.

A fitted coefficient is only a measurement if the runs pin it down. Three ways they fail to:

* **At the bound.** The optimiser moves positive coefficients as logarithms clipped to ±60
  (:data:`transferlaw.law.forms.LOG_CLIP`) and exponents within ±50. A coefficient whose term is a negligible
  share of the predicted loss at every run (below :data:`SHARE_TOL`, as for G = e^-60 ≈ 8.8e-27) is, for
  these runs, zero: the data cannot tell its value from the bound's. For a log-parameter θ the share is
  d log L / d θ at each run, the Jacobian column the fit already computes, so the rule needs no threshold on
  the value itself (G = 1e-6 next to a loss of 3 nats is as unmeasured as G = 1e-26).
* **A flat direction.** Where two parameters trade off (A and G when the runs do not reach the saturation
  in p that separates them), the curvature of the objective has a near-zero eigenvalue. It is read off
  the Gauss-Newton matrix J^T W J at the optimum, in correlation form.
* **Not identified** (from the bootstrap). A parameter is identified when its estimate and both ends of its
  interval are off the bound, an exponent's interval excludes 0, and its resamples are not a copy of
  another parameter's (|correlation| of the free values above :data:`CONFOUND_CORR`). Where alpha may be
  0, A·p^-alpha is a constant that G could be, so A is not identified either (and G, where beta may be 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from transferlaw.law.forms import EXPONENT_CLIP, LOG_CLIP, LawForm, get_form

#: a coefficient whose term is below this share of the predicted loss at every run is at the bound (zero)
SHARE_TOL = 1e-6
#: an exponent within this of the search box (±EXPONENT_CLIP) is at the bound
EXPONENT_MARGIN = 1e-3
#: the Gauss-Newton matrix in correlation form with an eigenvalue below this has a flat direction
FLAT_EIGENVALUE = 1e-8
#: resamples whose free values correlate beyond this cannot tell two parameters apart
CONFOUND_CORR = 0.9995
#: share of resamples at the bound beyond which an end of a 95% interval is the bound itself
BOUND_SHARE = 0.025
#: a log-coefficient within this of the top of its box (above e^50 ≈ 5e21: no loss term is that large) is
#: at the bound
TOP_MARGIN = 10.0


def at_bound(law: LawForm, free: np.ndarray, p: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(N, k) mask: where each of N free vectors has a parameter at the optimiser's bound, for runs (p, f)."""
    free = np.atleast_2d(np.asarray(free, float))
    _, jac = law.log_predict(free, np.asarray(p, float), np.asarray(f, float), jacobian=True)
    share = np.abs(jac).max(axis=1)  # (N, k): largest d log L / d theta over the runs
    logs = law.is_log_param
    out = np.zeros(free.shape, bool)
    out[:, logs] = (share[:, logs] < SHARE_TOL) | (free[:, logs] <= -LOG_CLIP + 1e-9) | _top(free[:, logs])
    out[:, ~logs] = np.abs(free[:, ~logs]) >= EXPONENT_CLIP - EXPONENT_MARGIN
    return out


def _top(log_values: np.ndarray) -> np.ndarray:
    return log_values >= LOG_CLIP - TOP_MARGIN


def fit_diagnostics(
    law: LawForm,
    free: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    loss: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    n_at_optimum: int | None = None,
    n_final_starts: int | None = None,
) -> dict[str, Any]:
    """What a reader needs to judge one fit: ``at_bound`` (parameter names), the residual spread in log space
    (weighted RMS and largest), how many of the final starts reached the optimum, and the flattest direction
    of the objective among the parameters off the bound (``flat`` when it is flat)."""
    free = np.asarray(free, float)
    p, f, loss = (np.asarray(x, float).ravel() for x in (p, f, loss))
    w = np.ones_like(p) if weights is None else np.asarray(weights, float).ravel()
    names = law.param_names
    bound = at_bound(law, free, p, f)[0]
    out, jac = law.log_predict(free[None, :], p, f, jacobian=True)
    resid = (out[0] - np.log(loss))[w > 0]
    diag: dict[str, Any] = {
        "at_bound": [n for n, b in zip(names, bound, strict=True) if b],
        "residual_rms": float(np.sqrt(np.average(resid**2, weights=w[w > 0])))
        if resid.size
        else float("nan"),
        "residual_max": float(np.abs(resid).max()) if resid.size else float("nan"),
    }
    if n_at_optimum is not None:
        diag["starts_at_optimum"] = int(n_at_optimum)
        diag["final_starts"] = int(n_final_starts if n_final_starts is not None else n_at_optimum)
    diag.update(_flattest(names, jac[0], w, ~bound))
    return diag


def _flattest(
    names: tuple[str, ...], jac: np.ndarray, w: np.ndarray, free_mask: np.ndarray
) -> dict[str, Any]:
    """The smallest eigenvalue of J^T W J in correlation form over the parameters off the bound, and the
    parameters its eigenvector is made of (those with a component of at least 0.3)."""
    idx = np.flatnonzero(free_mask)
    if idx.size < 2:
        return {"flat": False, "flattest": {}, "flattest_eigenvalue": float("nan")}
    j = jac[:, idx] * np.sqrt(w)[:, None]
    h = j.T @ j
    d = np.sqrt(np.diag(h))
    if not np.all(d > 0):
        return {"flat": False, "flattest": {}, "flattest_eigenvalue": float("nan")}
    c = h / np.outer(d, d)
    vals, vecs = np.linalg.eigh(c)
    v = vecs[:, 0] * np.sign(vecs[np.argmax(np.abs(vecs[:, 0])), 0])
    return {
        "flat": bool(vals[0] < FLAT_EIGENVALUE),
        "flattest": {names[i]: round(float(x), 3) for i, x in zip(idx, v, strict=True) if abs(x) >= 0.3},
        "flattest_eigenvalue": float(max(vals[0], 0.0)),
    }


def identification(
    form: str | LawForm,
    base_free: np.ndarray,
    sample_free: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    summary: Mapping[str, Mapping[str, float]],
) -> dict[str, dict[str, Any]]:
    """Per parameter: ``identified`` and, when not, ``why``; ``bound`` lists the ends of the 95% interval
    that are the bound itself (``"low"``, ``"high"``; only the low end: the interval is one-sided, an
    upper limit). ``summary`` holds the bootstrap's estimates and intervals
    (:meth:`transferlaw.law.bootstrap.BootstrapResult.summary`)."""
    law = get_form(form)
    sample_free = np.atleast_2d(np.asarray(sample_free, float))
    base_bound = at_bound(law, base_free, p, f)[0]
    s_bound = at_bound(law, sample_free, p, f)
    # a coefficient at the bound is (effectively) zero, unless clipped at the top; an exponent by its sign
    top = sample_free > 0
    logs = law.is_log_param
    top[:, logs] = _top(sample_free[:, logs])
    low_share = (s_bound & ~top).mean(axis=0)
    high_share = (s_bound & top).mean(axis=0)
    corr = _correlations(sample_free, ~s_bound.any(axis=0) & ~base_bound)
    low_end = _low_end_at_bound(law, base_free, p, f, summary)
    out: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(law.param_names):
        reasons = []
        if base_bound[i]:
            reasons.append("estimate at the bound")
        ends = [
            end
            for end, hit in (
                ("low", low_share[i] > BOUND_SHARE or low_end[i]),
                ("high", high_share[i] > BOUND_SHARE or low_share[i] > 1 - BOUND_SHARE),
            )
            if hit
        ]
        if low_share[i] > BOUND_SHARE or "high" in ends:
            reasons.append(f"{low_share[i] + high_share[i]:.0%} of resamples at the bound")
        elif low_end[i]:
            reasons.append("the low end of its interval is at the bound (its term negligible at every run)")
        if name in law.exponent_names and summary[name]["ci_low"] <= 0 <= summary[name]["ci_high"]:
            reasons.append("interval spans 0")
        twins = [
            law.param_names[j] for j in range(law.n_params) if j != i and abs(corr[i, j]) > CONFOUND_CORR
        ]
        if twins:
            reasons.append(f"resamples move with {', '.join(twins)}")
        entry: dict[str, Any] = {"identified": not reasons}
        if reasons:
            entry["why"] = "; ".join(reasons)
        if ends:
            entry["bound"] = ends
        out[name] = entry
    # an exponent that may be 0 makes its term a constant, which its coefficient shares with another one
    for exponent, coefficient, other in (("alpha", "A", "G"), ("beta", "G", "E")):
        if exponent in out and not out[exponent]["identified"] and out[coefficient]["identified"]:
            if other in out:
                out[coefficient] = {
                    "identified": False,
                    "why": f"{exponent} not identified: its term is not told apart from {other}",
                }
    return out


def _low_end_at_bound(
    law: LawForm,
    base_free: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    summary: Mapping[str, Mapping[str, float]],
) -> np.ndarray:
    """(k,): whether a coefficient's interval reaches zero: at its low end, the other parameters at their
    estimates, its term is below :data:`SHARE_TOL` of the loss at every run (the test the fit's own
    ``at_bound`` applies). The same one-sided rule for every coefficient: the share of resamples at the bound
    misses a coefficient whose low resamples come with another parameter that keeps the term alive in them
    (a tiny A with a steep negative alpha), though at the estimate such an A is zero."""
    out = np.zeros(law.n_params, bool)
    base_free = np.asarray(base_free, float)
    for i, name in enumerate(law.param_names):
        low = summary.get(name, {}).get("ci_low")
        if not law.is_log_param[i] or low is None or not np.isfinite(low) or low <= 0:
            continue
        free = base_free.copy()
        free[i] = max(np.log(low), -LOG_CLIP)
        out[i] = bool(at_bound(law, free, p, f)[0, i])
    return out


def _correlations(free: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Correlations of the resampled free values between usable parameters (0 elsewhere)."""
    k = free.shape[1]
    out = np.zeros((k, k))
    idx = np.flatnonzero(usable & (free.std(axis=0) > 0))
    if idx.size >= 2 and free.shape[0] > 2:
        out[np.ix_(idx, idx)] = np.corrcoef(free[:, idx], rowvar=False)
    return out


# ----------------------------------------------------------------------------------------------------
# saying it
# ----------------------------------------------------------------------------------------------------
def describe(name: str, entry: Mapping[str, Any], digits: int = 3) -> str:
    """A parameter as a reader should read it: "0.548 [0.52, 0.60]" when identified; its one-sided limit
    ("G < 0.03") when only the low end of its interval is the bound; "not identified (at bound)" or
    "not identified (interval spans 0)" otherwise."""
    est, lo, hi = entry.get("estimate"), entry.get("ci_low"), entry.get("ci_high")
    if entry.get("identified", True):
        return f"{_g(est, digits)} [{_g(lo, digits)}, {_g(hi, digits)}]"
    if entry.get("bound") == ["low"]:
        return f"{name} < {_g(hi, digits)}"
    why = entry.get("why", "")
    return f"not identified ({'at bound' if 'bound' in why else why})"


def _g(x: Any, digits: int) -> str:
    return "nan" if x is None or not np.isfinite(x) else f"{x:.{digits}g}"


def axis_words(
    p: str = "pretrain_step", f: str = "finetune_size", f_unit: str | None = None
) -> dict[str, str]:
    """How to name the runs along each axis of a table whose law's p is column ``p`` and f column ``f``
    (``f_unit``: the unit of ``finetune_size``, where known): checkpoints (by steps or tokens), model sizes,
    or values of whatever column it is; fine-tune sizes in sequences or tokens. Keys ``p_noun``,
    ``p_nouns``, ``p_axis``, ``p_later``, ``p_earlier``, ``p_spread``, and for f the same but ``f_more``."""
    if p in ("pretrain_step", "pretrain_tokens"):
        seen = "" if p == "pretrain_step" else " tokens"
        words = {
            "p_noun": "checkpoint",
            "p_nouns": "checkpoints",
            "p_axis": f"pre-training{seen}",
            "p_later": "checkpoints further into pre-training"
            if not seen
            else "checkpoints that have seen more pre-training tokens",
            "p_earlier": "earlier checkpoints" if not seen else "checkpoints that have seen fewer tokens",
            "p_spread": f"checkpoints spread over more orders of magnitude of pre-training{seen}",
        }
    elif p in MODEL_SIZE_COLUMNS:
        words = {
            "p_noun": "model size",
            "p_nouns": "model sizes",
            "p_axis": "model size",
            "p_later": "larger models",
            "p_earlier": "smaller models",
            "p_spread": "model sizes spread over more orders of magnitude",
        }
    else:
        words = {
            "p_noun": f"value of {p}",
            "p_nouns": f"values of {p}",
            "p_axis": p,
            "p_later": f"runs at larger {p}",
            "p_earlier": f"runs at smaller {p}",
            "p_spread": f"values of {p} spread over more orders of magnitude",
        }
    unit = {"finetune_tokens": "tokens", "finetune_sequences": "sequences"}.get(f, f_unit)
    if f in ("finetune_size", "finetune_tokens", "finetune_sequences"):
        words |= {
            "f_noun": "fine-tune size",
            "f_nouns": "fine-tune sizes",
            "f_axis": "fine-tuning data",
            "f_more": "larger fine-tune sizes" + (f" (more {unit})" if unit else ""),
            "f_spread": "fine-tune sizes" + (f" (in {unit})" if unit else "") + " spread over more orders "
            "of magnitude",
        }
    else:
        words |= {
            "f_noun": f"value of {f}",
            "f_nouns": f"values of {f}",
            "f_axis": f,
            "f_more": f"runs at larger {f}",
            "f_spread": f"values of {f} spread over more orders of magnitude",
        }
    return words


#: columns a table may hold the model's size in, when model size is the law's p
MODEL_SIZE_COLUMNS = ("n_params", "model_size", "parameters", "params", "N")


def needs(p: str = "pretrain_step", f: str = "finetune_size", f_unit: str | None = None) -> dict[str, str]:
    """What runs would measure each parameter that is not identified, in the words of the table's axes
    (:func:`axis_words`)."""
    w = axis_words(p, f, f_unit)
    return {
        "G": f"{w['p_later']}, where A·p^-alpha has flattened, to separate G from it",
        "A": f"{w['p_earlier']}, where {w['p_axis']} still moves the loss",
        "alpha": w["p_spread"],
        "E": f"{w['f_more']}, where the loss approaches its floor E",
        "beta": w["f_spread"],
    }


#: what runs would measure a parameter that is not identified, for the workflow's default axes
NEEDS = needs()


def wrong_way(
    p: str = "pretrain_step", f: str = "finetune_size", f_unit: str | None = None
) -> dict[str, str]:
    """What an exponent below zero over its whole interval says, in the words of the table's axes."""
    w = axis_words(p, f, f_unit)
    return {
        "alpha": f"the loss rises with {w['p_axis']} (it hurts this dataset), so G is not a gap that more "
        f"{w['p_axis']} would close",
        "beta": f"the loss rises with {w['f_axis']}",
    }


#: what an exponent below zero over its whole interval says about the runs (the workflow's default axes)
WRONG_WAY = wrong_way()


def needs_sentence(
    dataset: str,
    params: Mapping[str, Mapping[str, Any]],
    p: str = "pretrain_step",
    f: str = "finetune_size",
    f_unit: str | None = None,
) -> str | None:
    """One sentence: which parameters the runs do not measure and what runs would (in the words of the
    table's p and f columns, :func:`needs`), and any exponent measured below zero (a loss that rises with p
    or f); None if every parameter is measured, the right way."""
    parts = []
    wanted = needs(p, f, f_unit)
    missing = [n for n, e in params.items() if not e.get("identified", True)]
    if missing:
        wants = [wanted[n] for n in missing if n in wanted]
        what = "; ".join(dict.fromkeys(wants)) if wants else "more runs"
        them = "it" if len(missing) == 1 else "them"
        parts.append(f"{', '.join(missing)} not identified; measuring {them} needs {what}")
    for name, meaning in wrong_way(p, f, f_unit).items():
        entry = params.get(name, {})
        if entry.get("identified", True) and (entry.get("ci_high") or 0.0) < 0:
            parts.append(f"{name} < 0 over its whole interval: {meaning}")
    return f"{dataset}: {'; '.join(parts)}." if parts else None
