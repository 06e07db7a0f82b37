"""transferlaw: measure scaling laws for transfer (Barnett 2024) as a reproducible Snakemake study.

The law fitted is L(p, f) = (A·p^-α + G)·f^-β + E, where p is pre-training (steps or tokens), f the
fine-tuning data size, and G the *transfer gap*: the part of the fine-tuning loss that no amount of
pre-training removes.
"""

__version__ = "0.1.0"
