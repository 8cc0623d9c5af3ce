"""event: one index on (exercise_id, seq) instead of exercise_id alone

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:05:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_exercise_id_seq", ["exercise_id", "seq"], unique=False)
        batch_op.drop_index("ix_event_exercise_id")


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_exercise_id", ["exercise_id"], unique=False)
        batch_op.drop_index("ix_event_exercise_id_seq")
