"""Pipelines: a DAG of steps (model refs, built-in transforms, bundles) with contract-checked edges."""
