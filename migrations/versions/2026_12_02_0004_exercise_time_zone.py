"""exercise: the IANA time zone its times are shown in

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exercise", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    # Exercises held before there was a choice: a Japanese one was held in Japan.
    op.execute("UPDATE exercise SET time_zone = 'Asia/Tokyo' WHERE locale = 'ja'")


def downgrade() -> None:
    with op.batch_alter_table("exercise", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
