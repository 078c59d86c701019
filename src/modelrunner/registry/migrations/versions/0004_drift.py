"""Drift monitoring: per-worker sketches per time window, per-model thresholds, baselines, alert states.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_sketches",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sketch", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "version", "worker", "window_start"),
    )
    op.create_index("ix_drift_sketches_endpoint_window", "drift_sketches", ["endpoint", "window_start"])
    op.create_table(
        "drift_settings",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("model"),
    )
    op.create_table(
        "drift_baselines",
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("model", "version"),
    )
    op.create_table(
        "drift_alerts",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "kind"),
    )


def downgrade() -> None:
    op.drop_table("drift_alerts")
    op.drop_table("drift_baselines")
    op.drop_table("drift_settings")
    op.drop_index("ix_drift_sketches_endpoint_window", table_name="drift_sketches")
    op.drop_table("drift_sketches")
