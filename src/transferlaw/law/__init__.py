"""The estimator: law forms, the fit (a compiled Levenberg-Marquardt on eq. 12's Huber objective), its
diagnostics, bootstrap, step-wise cross-validation, effective data transferred, budget allocation, the
advice on which runs next, run noise and method comparisons.

Needs numpy, scipy, numba and pandas only: a researcher with a table of losses fits it without torch
(``pip install transferlaw``). It imports nothing from the other stages (a test checks it).
"""
