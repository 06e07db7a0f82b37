"""What a study shows: the paper's figures, its tables and the summary page, from fits and records.
Reads the estimator's results (:mod:`transferlaw.law`); never trains."""
