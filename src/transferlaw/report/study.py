"""What the study ran, as the paper reports it: Table 1 (the datasets: source, tokens, licence), Table 4 (the
checkpoints and fine-tune sizes of each dataset) and eq. 3 (the study's fine-tuning compute), each written
from the records and the prepared data, not from the config: a run that failed, or a size a dataset could
not hold, shows as what it was. And section 5.1's check of the exponents' variation across datasets.

Functions on tables; the workflow script (``workflow/scripts/study_tables.py``) reads the files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from transferlaw.law.bootstrap import BootstrapSummary
from transferlaw.report.tables import coefficient_of_variation
from transferlaw.schema import STATUS_OK

#: the paper's figure for eq. 3 over its 750 runs (section 4.2), which the summary quotes beside ours
PAPER_COMPUTE_FLOP = 4.77e16
#: the paper's finding (section 5.1): CV(alpha) below a quarter of CV(beta) across its five datasets
PAPER_CV_RATIO = 0.25


def eq3_flop(runs: pd.DataFrame) -> pd.Series:
    """Eq. 3 per run: 6 · (epochs until convergence) · N · D, N the model's parameters, D the tokens of one
    epoch. The records' ``flops`` counts what was trained more closely (a LoRA run's weight gradients are
    the adapters' alone); eq. 3 is the paper's estimate, kept to compare with its 4.77e16."""
    return 6.0 * runs["epochs"].astype(float) * runs["n_params"].astype(float) * runs["finetune_tokens"]


def compute_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Eq. 3 per dataset and in all (a last row ``all``): the runs, their epochs, eq. 3's FLOP, the records'
    own count (``flops``) and the GPU-hours the runs took (``wall_seconds``, every run, whatever its
    status: each was paid for)."""
    df = runs.assign(eq3_flop=eq3_flop(runs))
    by = df.groupby("dataset", sort=True)
    table = pd.DataFrame(
        {
            "runs": by.size(),
            "epochs": by["epochs"].sum(),
            "eq3_flop": by["eq3_flop"].sum(),
            "record_flop": by["flops"].sum(),
            "wall_hours": by["wall_seconds"].sum() / 3600.0,
        }
    ).reset_index()
    total = {"dataset": "all", **{c: table[c].sum() for c in table.columns if c != "dataset"}}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def _ints(values: pd.Series) -> str:
    return ", ".join(str(int(v)) for v in sorted(set(values)))


def grid_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 4: per dataset and model, the pre-training steps and the fine-tune sizes that were run, how
    many runs and how many of them a law uses (status ``ok``), by status otherwise."""
    rows = []
    for (dataset, model), g in runs.groupby(["dataset", "model"], sort=True):
        other = g.loc[g["status"] != STATUS_OK, "status"].value_counts().sort_index()
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "checkpoints": g["pretrain_step"].nunique(),
                "pretrain_steps": _ints(g["pretrain_step"]),
                "sizes": g["finetune_size"].nunique(),
                "finetune_sizes": _ints(g["finetune_size"]),
                "finetune_unit": ", ".join(sorted(set(g["finetune_unit"]))),
                "runs": len(g),
                "usable": int((g["status"] == STATUS_OK).sum()),
                "not_used": ", ".join(f"{n} {s}" for s, n in other.items()),
            }
        )
    return pd.DataFrame(rows)


def datasets_table(manifests: Mapping[str, Mapping[str, Any]], described: Mapping[str, Mapping[str, str]]):
    """Table 1: per dataset its source and licence (as the config describes them: ``described[name]``, keys
    ``source`` and ``licence``) and the tokens the study's tokenizer made of it (the prepared data's
    manifest), with the sequences of the eval split and of the training pool."""
    rows = []
    for name, m in manifests.items():
        d = described.get(name, {})
        rows.append(
            {
                "dataset": name,
                "source": d.get("source", ""),
                "tokens": int(m["tokens"]),
                "context_length": int(m["context_length"]),
                "eval_sequences": int(m["eval_sequences"]),
                "train_pool_sequences": int(m["train_pool_sequences"]),
                "licence": d.get("licence") or "not stated (datasets.<name>.licence)",
            }
        )
    return pd.DataFrame(rows)


def exponent_variation_sentence(summaries: Mapping[str, BootstrapSummary]) -> str | None:
    """Section 5.1's check, as a sentence: the coefficient of variation of alpha across the datasets whose
    law measures it, against that of beta (the paper: CV(alpha) < 25% of CV(beta)). None where fewer than
    two datasets measure both."""
    est: dict[str, list[float]] = {"alpha": [], "beta": []}
    used = []
    for dataset, s in summaries.items():
        if not s.fitted:
            continue
        params = s.params
        if not all(n in params and params[n].get("identified", True) for n in est):
            continue
        used.append(str(dataset))
        for n in est:
            est[n].append(float(params[n]["estimate"]))
    if len(used) < 2:
        return None
    cv_a, cv_b = (coefficient_of_variation(est[n]) for n in ("alpha", "beta"))
    ratio = cv_a / cv_b if cv_b > 0 else float("inf")
    verdict = (
        "as the paper found (below 25%)"
        if ratio < PAPER_CV_RATIO
        else "unlike the paper (it found below 25%)"
    )
    return (
        f"Across the {len(used)} datasets that measure both exponents ({', '.join(used)}), the coefficient "
        f"of variation of alpha is {cv_a:.3f} and of beta {cv_b:.3f}: alpha's is {ratio:.0%} of beta's, "
        f"{verdict} (Barnett 2024, section 5.1)."
    )


def compute_sentence(compute: pd.DataFrame) -> str:
    """The study's fine-tuning compute by eq. 3, beside the paper's."""
    total = compute.loc[compute["dataset"] == "all"].iloc[0]
    return (
        "Fine-tuning compute by eq. 3 (6 · epochs · N · D summed over the runs): "
        f"{total['eq3_flop']:.3g} FLOP over {int(total['runs'])} runs (the paper: "
        f"{PAPER_COMPUTE_FLOP:.3g} over 750); the records' own count {total['record_flop']:.3g} FLOP, "
        f"{total['wall_hours']:.3g} hours of run time "
        "(`results/tables/compute.md`)."
    )
