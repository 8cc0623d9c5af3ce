"""debrief: facilitator evaluation, improvement plan, imported scenario sets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:36:29.065852
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "importedscenarioset",
        sa.Column("set_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["facilitator.id"],
            name=op.f("fk_importedscenarioset_owner_id_facilitator"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("set_id", name=op.f("pk_importedscenarioset")),
    )
    with op.batch_alter_table("importedscenarioset", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_importedscenarioset_owner_id"), ["owner_id"], unique=False
        )

    op.create_table(
        "evaluation",
        sa.Column("exercise_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("strengths", sa.JSON(), nullable=False),
        sa.Column("areas_for_improvement", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["exercise_id"],
            ["exercise.id"],
            name=op.f("fk_evaluation_exercise_id_exercise"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exercise_id", name=op.f("pk_evaluation")),
    )
    op.create_table(
        "improvementaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exercise_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("issue", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["exercise_id"],
            ["exercise.id"],
            name=op.f("fk_improvementaction_exercise_id_exercise"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvementaction")),
    )
    with op.batch_alter_table("improvementaction", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_improvementaction_exercise_id"), ["exercise_id"], unique=False
        )

    op.create_table(
        "injectrating",
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("inject_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("rating", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["inject_id"],
            ["inject.id"],
            name=op.f("fk_injectrating_inject_id_inject"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_injectrating_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "inject_id", name=op.f("pk_injectrating")),
    )


def downgrade() -> None:
    op.drop_table("injectrating")
    with op.batch_alter_table("improvementaction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_improvementaction_exercise_id"))

    op.drop_table("improvementaction")
    op.drop_table("evaluation")
    with op.batch_alter_table("importedscenarioset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_importedscenarioset_owner_id"))

    op.drop_table("importedscenarioset")
