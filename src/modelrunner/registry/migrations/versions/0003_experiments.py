"""Online experiments (shadow / canary / A/B per endpoint), the prediction log and the feedback it joins.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("candidate", sa.String(length=300), nullable=False),
        sa.Column("candidate_ref", sa.String(length=300), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("sticky_key", sa.String(length=128), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("min_labels", sa.Integer(), nullable=False),
        sa.Column("min_requests", sa.Integer(), nullable=False),
        sa.Column("then_action", sa.String(length=16), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_experiments_endpoint", "experiments", ["endpoint"])
    # at most one running experiment per endpoint, also under concurrent starts on PostgreSQL
    op.create_index(
        "uq_experiments_running",
        "experiments",
        ["endpoint"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )
    op.create_table(
        "predictions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("experiment_id", sa.String(length=64), nullable=True),
        sa.Column("variant", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_predictions_endpoint_request", "predictions", ["endpoint", "request_id"])
    op.create_index("ix_predictions_endpoint_ts", "predictions", ["endpoint", "ts"])
    op.create_table(
        "feedback",
        sa.Column("endpoint", sa.String(length=128), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("target", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("endpoint", "request_id"),
    )


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_index("ix_predictions_endpoint_ts", table_name="predictions")
    op.drop_index("ix_predictions_endpoint_request", table_name="predictions")
    op.drop_table("predictions")
    op.drop_index("uq_experiments_running", table_name="experiments")
    op.drop_index("ix_experiments_endpoint", table_name="experiments")
    op.drop_table("experiments")
