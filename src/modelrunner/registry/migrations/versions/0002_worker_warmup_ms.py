"""Worker status rows record the warm-up time of the version they serve, beside its load time.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_status") as batch:
        batch.add_column(sa.Column("warmup_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_status") as batch:
        batch.drop_column("warmup_ms")
