"""Downstream datasets: reading sources (files, archives, mail, LaTeX, hub datasets, downloads), the
fictional encyclopedia's world simulation, and tokenized data prepared for fine-tuning (eval split and
nested training subsets). Imports nothing from the estimator, training or reporting."""
