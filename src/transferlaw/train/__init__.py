"""Training: the workflow's stand-in for a checkpoint suite (pre-training), checkpoints laid out as a
Hugging Face cache, fetched, verified and pinned, fine-tuning runs and the long-lived workers that serve
them. Needs torch, transformers and peft (``pip install 'transferlaw[train]'``); reads prepared data
(:mod:`transferlaw.data`), never the estimator or the reports."""
