"""Synthetic inputs of exactly the shape the workflow writes: runs, a fit, bootstrap samples and summary,
cross-validation rows. Lets figure code be tested before (and without) the producers of those files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.law.fit import FitRecord
from transferlaw.law.forms import get_form

PARAMS = {"A": 3.0, "alpha": 0.35, "G": 0.4, "beta": 0.25, "E": 1.2}
STEPS = [0, 16, 64, 256, 1024]
SIZES = [4, 8, 16, 32, 64]


def runs(dataset: str = "toy", params=PARAMS, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    law = get_form("mikami_shifted")
    rows = []
    for p in STEPS:
        for f in SIZES:
            loss = float(law.predict(params, p, f)) * float(np.exp(rng.normal(0, 0.01)))
            best = int(3 + 10 / (1 + np.log1p(p)) + rng.integers(0, 3))
            rows.append(
                {
                    "dataset": dataset,
                    "model": "tiny-neox",
                    "revision": f"step{p}",
                    "revision_sha": f"{p:040x}",
                    "pretrain_step": p,
                    "pretrain_tokens": p * 512,
                    "finetune_size": f,
                    "finetune_unit": "sequences",
                    "eval_loss": loss,
                    "best_epoch": best,
                    "epochs": best + 2,
                    "status": "ok",
                }
            )
    return pd.DataFrame(rows)


def fit(dataset: str = "toy", params=PARAMS) -> dict:
    return {
        "dataset": dataset,
        "form": "mikami_shifted",
        "formula": get_form("mikami_shifted").formula,
        "params": dict(params),
        "objective": 1e-4,
        "n_points": 25,
        "p_column": "pretrain_step",
        "f_column": "finetune_size",
        "converged": True,
        "fit_seconds": 0.1,
        "model": "tiny-neox",
    }


def fit_record(dataset: str = "toy", params=PARAMS, **changes) -> FitRecord:
    """:func:`fit` (with ``changes`` to its JSON) as every reader loads it."""
    return FitRecord.from_json({**fit(dataset, params), **changes})


def bootstrap_samples(params=PARAMS, n: int = 60, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {k: v * float(np.exp(rng.normal(0, 0.08))) for k, v in params.items()}
        rows.append({"sample": i, **row, "objective": 1e-4, "converged": i % 17 != 5})
    return pd.DataFrame(rows)


def bootstrap_summary(dataset: str, samples: pd.DataFrame, params=PARAMS) -> dict:
    out = {}
    for name, est in params.items():
        v = samples[name].to_numpy(float)
        out[name] = {
            "estimate": est,
            "se": float(v.std()),
            "ci_low": float(np.percentile(v, 2.5)),
            "ci_high": float(np.percentile(v, 97.5)),
        }
    return {
        "dataset": dataset,
        "form": "mikami_shifted",
        "n_samples": len(samples),
        "seed": 1,
        "n_points": 25,
        "params": out,
    }


def bootstrap_record(dataset: str, samples: pd.DataFrame, params=PARAMS) -> BootstrapSummary:
    """:func:`bootstrap_summary` as every reader loads it."""
    return BootstrapSummary.from_json(bootstrap_summary(dataset, samples, params))


def crossval(dataset: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k, form in enumerate(["mikami", "mikami_shifted", "mikami_f_shift", "mikami_no_e"]):
        for l2e, l2c in [(0.0, 0.0), (0.1, 0.0), (0.0, 0.1)]:
            for pt, ft in [(16, 8), (64, 16)]:
                rmse = 0.02 * (1 + k) * float(np.exp(rng.normal(0, 0.1)))
                rows.append(
                    {
                        "dataset": dataset,
                        "form": form,
                        "l2_exponents": l2e,
                        "l2_coefficients": l2c,
                        "p_threshold": pt,
                        "f_threshold": ft,
                        "n_train": 15,
                        "n_test": 10,
                        "rmse": rmse,
                        "mae": 0.8 * rmse,
                    }
                )
    return pd.DataFrame(rows)


#: Table 2 of Barnett (2024): A, G, alpha, beta, E per dataset, p in pre-training steps (eq. 2, `mikami`)
TABLE2 = {
    "fictional_encyclopedia": dict(A=284.766, alpha=0.730, G=2.570, beta=0.123, E=0.538),
    "math_arxiv": dict(A=317.966, alpha=0.756, G=0.166, beta=0.059, E=1.758),
    "statistics_textbook": dict(A=177.321, alpha=0.627, G=1.305, beta=0.126, E=1.367),
    "enron_emails": dict(A=181.482, alpha=0.611, G=0.595, beta=0.159, E=1.373),
    "house_cat_genome": dict(A=43.556, alpha=0.718, G=0.548, beta=0.228, E=2.677),
}
#: law families beyond Table 2 that the advice and adaptive benchmarks simulate (form ``mikami``'s
#: parameters); the last two are held out in both
OTHER_FAMILIES = {
    "no_gap": dict(A=250.0, alpha=0.7, G=1e-9, beta=0.15, E=1.5),
    "large_E": dict(A=200.0, alpha=0.65, G=0.8, beta=0.2, E=4.0),
    "small_alpha": dict(A=8.0, alpha=0.2, G=0.7, beta=0.15, E=1.2),
    "large_beta": dict(A=300.0, alpha=0.7, G=1.5, beta=0.5, E=1.0),
    "late_saturation": dict(A=3000.0, alpha=1.0, G=0.3, beta=0.1, E=2.0),
    "steep_f_small_E": dict(A=100.0, alpha=0.5, G=1.0, beta=0.35, E=0.3),
}


def paper_grid(params, seed: int = 0, noise: float = 0.02, form: str = "mikami"):
    """(p, f, loss) on a grid shaped like the paper's (15 checkpoints from step 1000 to 143000, 10 fine-tune
    sizes from 10 to 1,100) from ``params``, with log-normal noise."""
    rng = np.random.default_rng(seed)
    steps = np.unique(np.geomspace(1000, 143_000, 15).round())
    sizes = np.unique(np.geomspace(10, 1100, 10).round())
    p, f = (a.ravel() for a in np.meshgrid(steps, sizes, indexing="ij"))
    loss = get_form(form).predict(params, p, f) * np.exp(rng.normal(0.0, noise, p.size))
    return p, f, loss
