"""Online experiments: per-variant online metrics, ``--decide`` rules, automatic promote/abort decisions.

Layer between runner and evaluation: imports registry, evaluation and contract; the runner imports it (the
decider task). See docs/experiments.md.
"""
