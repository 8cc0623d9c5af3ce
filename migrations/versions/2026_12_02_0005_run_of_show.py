"""run of show: the projector's stage, withdrawn injects, reopened and later submissions

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("exercise", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.JSON(), nullable=True))
    with op.batch_alter_table("inject", schema=None) as batch_op:
        # Existing injects went to whoever the facilitator chose: none goes on stage by itself.
        batch_op.add_column(
            sa.Column("for_all_teams", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reopened_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "resubmission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("inject_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["inject_id"],
            ["inject.id"],
            name=op.f("fk_resubmission_inject_id_inject"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_resubmission_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resubmission")),
    )
    with op.batch_alter_table("resubmission", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_resubmission_team_id"), ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("resubmission", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_resubmission_team_id"))
    op.drop_table("resubmission")
    with op.batch_alter_table("submission", schema=None) as batch_op:
        batch_op.drop_column("reopened_at")
    with op.batch_alter_table("inject", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("for_all_teams")
    with op.batch_alter_table("exercise", schema=None) as batch_op:
        batch_op.drop_column("stage")
