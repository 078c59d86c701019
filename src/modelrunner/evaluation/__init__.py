"""Evaluation: requirements (gates), task metrics, data sets, speed in-process and served, promotion, reports.

Entry points: ``evaluate.evaluate`` (candidates -> :class:`~modelrunner.evaluation.evaluate.EvaluationRun`),
``promote.promote`` (move an alias to the best passing candidate), ``report.write_report`` (HTML).
"""
