"""The servers ``make bench`` compares: each peer in its own virtual environment under ``bench/.cache``."""
