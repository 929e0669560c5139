"""procure to deliver

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 15:27:10.135436
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SEQUENCES = (
    "customer_order_seq",
    "purchase_order_seq",
    "work_order_seq",
    "shipment_seq",
    "lot_number_seq",
)

# The lot status machine (see docs/procure-to-deliver.md).
TRANSITIONS = [
    ("QUARANTINE", "RELEASED"),
    ("QUARANTINE", "ON_HOLD"),
    ("QUARANTINE", "REJECTED"),
    ("QUARANTINE", "EXPIRED"),
    ("RELEASED", "ON_HOLD"),
    ("RELEASED", "CONSUMED"),
    ("RELEASED", "SHIPPED"),
    ("RELEASED", "RECALLED"),
    ("RELEASED", "EXPIRED"),
    ("ON_HOLD", "RELEASED"),
    ("ON_HOLD", "QUARANTINE"),
    ("ON_HOLD", "REJECTED"),
    ("ON_HOLD", "RECALLED"),
    ("ON_HOLD", "EXPIRED"),
    ("SHIPPED", "RECALLED"),
    ("EXPIRED", "REJECTED"),
    ("RECALLED", "REJECTED"),
]

TRIGGERS = [
    """
    CREATE FUNCTION lot_status_check() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
            SELECT 1 FROM lot_status_transition
            WHERE from_status = OLD.status AND to_status = NEW.status
        ) THEN
            RAISE EXCEPTION 'lot % cannot go from % to %', OLD.lot_number, OLD.status, NEW.status
                USING ERRCODE = 'LL001';
        END IF;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER lot_status_guard BEFORE UPDATE OF status ON lot "
    "FOR EACH ROW EXECUTE FUNCTION lot_status_check()",
    """
    CREATE FUNCTION lot_status_record() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
            INSERT INTO lot_status_change
                (lot_id, from_status, to_status, reason, changed_by, process_id, changed_at)
            VALUES (NEW.id, CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END, NEW.status,
                    COALESCE(NULLIF(NEW.status_reason, ''),
                        CASE WHEN NEW.status = 'ON_HOLD' THEN NEW.hold_reason END, ''),
                    NEW.status_changed_by, NEW.status_process_id, now());
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER lot_status_history AFTER INSERT OR UPDATE OF status ON lot "
    "FOR EACH ROW EXECUTE FUNCTION lot_status_record()",
    """
    CREATE FUNCTION inventory_movement_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        l lot%ROWTYPE;
        item_status text;
        verb text := CASE NEW.kind WHEN 'issue' THEN 'issued' ELSE 'shipped' END;
    BEGIN
        IF NEW.kind NOT IN ('issue', 'ship', 'scrap', 'return') THEN
            RETURN NEW;
        END IF;
        SELECT * INTO l FROM lot WHERE id = NEW.lot_id FOR UPDATE;
        IF NEW.kind IN ('issue', 'ship') THEN
            IF l.status <> 'RELEASED' THEN
                RAISE EXCEPTION 'lot % is %: it cannot be %', l.lot_number, l.status
                    || CASE WHEN l.hold_reason <> '' AND l.status = 'ON_HOLD'
                            THEN ' (' || l.hold_reason || ')' ELSE '' END, verb
                    USING ERRCODE = 'LL002';
            END IF;
            IF l.expires_on IS NOT NULL AND l.expires_on < current_date THEN
                RAISE EXCEPTION 'lot % expired on %: it cannot be %', l.lot_number,
                    l.expires_on, verb USING ERRCODE = 'LL002';
            END IF;
        END IF;
        IF NEW.kind = 'issue' THEN
            SELECT status INTO item_status FROM item WHERE id = l.item_id;
            IF item_status <> 'effective' THEN
                RAISE EXCEPTION 'lot % is of a % revision of %: only the effective revision is issued',
                    l.lot_number, item_status, l.part_number USING ERRCODE = 'LL002';
            END IF;
        END IF;
        IF NEW.quantity > l.quantity THEN
            RAISE EXCEPTION 'lot % holds % %, not %', l.lot_number, l.quantity, l.uom,
                NEW.quantity USING ERRCODE = 'LL003';
        END IF;
        UPDATE lot SET quantity = quantity - NEW.quantity,
            status = CASE
                WHEN quantity - NEW.quantity > 0 OR NEW.kind NOT IN ('issue', 'ship') THEN status
                WHEN NEW.kind = 'issue' THEN 'CONSUMED' ELSE 'SHIPPED' END,
            status_reason = CASE WHEN quantity - NEW.quantity > 0 THEN status_reason
                ELSE 'all ' || verb || ' (' || NEW.reference || ')' END,
            status_changed_by = NEW.actor,
            status_process_id = NEW.process_id
        WHERE id = l.id;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER inventory_movement_guard BEFORE INSERT ON inventory_movement "
    "FOR EACH ROW EXECUTE FUNCTION inventory_movement_check()",
]


def upgrade() -> None:
    for seq in SEQUENCES:
        # purchase and work orders start at 501: the demo's seeded orders sit below
        start = 501 if seq in ("purchase_order_seq", "work_order_seq") else 1
        op.execute(f"CREATE SEQUENCE {seq} START {start}")
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("webhook_url", sa.String(length=300), nullable=False),
        sa.Column("min_shelf_life_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
        sa.UniqueConstraint("code", name=op.f("uq_customer_code")),
    )
    op.create_table(
        "doa_threshold",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("up_to_amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("approver_group", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False, server_default="EUR"),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_doa_threshold")),
    )
    op.create_table(
        "lot_number_rule",
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("pattern", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("origin", name=op.f("pk_lot_number_rule")),
    )
    op.create_table(
        "lot_status_transition",
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("from_status", "to_status", name=op.f("pk_lot_status_transition")),
    )
    op.create_table(
        "customer_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("external_reference", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_customer_order_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_order")),
        sa.UniqueConstraint("number", name=op.f("uq_customer_order_number")),
        sa.UniqueConstraint("process_id", name=op.f("uq_customer_order_process_id")),
    )
    op.create_index(
        op.f("ix_customer_order_customer_id"), "customer_order", ["customer_id"], unique=False
    )
    op.create_table(
        "supplier_scorecard",
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("receipts", sa.Integer(), nullable=False),
        sa.Column("on_time_receipts", sa.Integer(), nullable=False),
        sa.Column("inspections", sa.Integer(), nullable=False),
        sa.Column("accepted_inspections", sa.Integer(), nullable=False),
        sa.Column("scars", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["supplier.id"],
            name=op.f("fk_supplier_scorecard_supplier_id_supplier"),
        ),
        sa.PrimaryKeyConstraint("supplier_id", name=op.f("pk_supplier_scorecard")),
    )
    op.create_table(
        "shipment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("customer_order_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("carrier", sa.String(length=60), nullable=False),
        sa.Column("tracking", sa.String(length=100), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=True),
        sa.Column("expected_delivery_on", sa.Date(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("shipped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_shipment_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["customer_order_id"],
            ["customer_order.id"],
            name=op.f("fk_shipment_customer_order_id_customer_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment")),
        sa.UniqueConstraint("number", name=op.f("uq_shipment_number")),
        sa.UniqueConstraint("process_id", name=op.f("uq_shipment_process_id")),
    )
    op.create_index(op.f("ix_shipment_customer_id"), "shipment", ["customer_id"], unique=False)
    op.create_table(
        "inspection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("accept_number", sa.Integer(), nullable=False),
        sa.Column("defects", sa.Integer(), nullable=False),
        sa.Column("results", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("inspector", sa.String(length=64), nullable=False),
        sa.Column(
            "inspected_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.CheckConstraint(
            "kind IN ('incoming', 'in_process', 'final')", name=op.f("ck_inspection_kind")
        ),
        sa.CheckConstraint("outcome IN ('pass', 'fail')", name=op.f("ck_inspection_outcome")),
        sa.ForeignKeyConstraint(["lot_id"], ["lot.id"], name=op.f("fk_inspection_lot_id_lot")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection")),
        sa.UniqueConstraint("idempotency_key", name="uq_inspection_idempotency_key"),
    )
    op.create_index(op.f("ix_inspection_lot_id"), "inspection", ["lot_id"], unique=False)
    op.create_index(op.f("ix_inspection_process_id"), "inspection", ["process_id"], unique=False)
    op.create_table(
        "inventory_movement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("reference", sa.String(length=60), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=300), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('receipt', 'output', 'issue', 'ship', 'scrap', 'return', 'adjust')",
            name=op.f("ck_inventory_movement_kind"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_inventory_movement_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lot.id"], name=op.f("fk_inventory_movement_lot_id_lot")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inventory_movement")),
        sa.UniqueConstraint("idempotency_key", name="uq_inventory_movement_idempotency_key"),
    )
    op.create_index(
        op.f("ix_inventory_movement_lot_id"), "inventory_movement", ["lot_id"], unique=False
    )
    op.create_table(
        "lot_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by", sa.String(length=64), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["lot.id"], name=op.f("fk_lot_status_change_lot_id_lot")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_status_change")),
    )
    op.create_index(
        op.f("ix_lot_status_change_lot_id"), "lot_status_change", ["lot_id"], unique=False
    )
    op.create_table(
        "receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purchase_order_line_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("received_by", sa.String(length=64), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("on_time", sa.Boolean(), nullable=False),
        sa.Column("asn_reference", sa.String(length=60), nullable=False),
        sa.Column("gs1", sa.String(length=200), nullable=False),
        sa.Column("process_id", sa.String(length=200), nullable=True),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lot.id"], name=op.f("fk_receipt_lot_id_lot")),
        sa.ForeignKeyConstraint(
            ["purchase_order_line_id"],
            ["purchase_order_line.id"],
            name=op.f("fk_receipt_purchase_order_line_id_purchase_order_line"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipt")),
        sa.UniqueConstraint("event_id", name=op.f("uq_receipt_event_id")),
        sa.UniqueConstraint("lot_id", name=op.f("uq_receipt_lot_id")),
    )
    op.create_index(op.f("ix_receipt_process_id"), "receipt", ["process_id"], unique=False)
    op.create_index(
        op.f("ix_receipt_purchase_order_line_id"),
        "receipt",
        ["purchase_order_line_id"],
        unique=False,
    )
    op.create_table(
        "serial_number",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("udi", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["lot_id"], ["lot.id"], name=op.f("fk_serial_number_lot_id_lot")),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipment.id"], name=op.f("fk_serial_number_shipment_id_shipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serial_number")),
        sa.UniqueConstraint("lot_id", "serial", name="uq_serial_number_lot_serial"),
    )
    op.create_index(op.f("ix_serial_number_lot_id"), "serial_number", ["lot_id"], unique=False)
    op.create_index("ix_serial_number_serial", "serial_number", ["serial"], unique=False)
    op.create_table(
        "genealogy_edge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("parent_lot_id", sa.Integer(), nullable=False),
        sa.Column("child_lot_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.Column("movement_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "parent_lot_id <> child_lot_id", name=op.f("ck_genealogy_edge_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["child_lot_id"], ["lot.id"], name=op.f("fk_genealogy_edge_child_lot_id_lot")
        ),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["inventory_movement.id"],
            name=op.f("fk_genealogy_edge_movement_id_inventory_movement"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_lot_id"], ["lot.id"], name=op.f("fk_genealogy_edge_parent_lot_id_lot")
        ),
        sa.ForeignKeyConstraint(
            ["work_order_id"],
            ["work_order.id"],
            name=op.f("fk_genealogy_edge_work_order_id_work_order"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genealogy_edge")),
        sa.UniqueConstraint(
            "parent_lot_id", "child_lot_id", "work_order_id", name="uq_genealogy_edge_parent_child"
        ),
    )
    op.create_index(
        "ix_genealogy_edge_child", "genealogy_edge", ["child_lot_id", "parent_lot_id"], unique=False
    )
    op.create_index(
        op.f("ix_genealogy_edge_work_order_id"), "genealogy_edge", ["work_order_id"], unique=False
    )
    op.create_table(
        "shipment_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shipment_id", sa.Integer(), nullable=False),
        sa.Column("lot_id", sa.Integer(), nullable=False),
        sa.Column("part_number", sa.String(length=40), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("consignee_id", sa.Integer(), nullable=False),
        sa.Column("movement_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consignee_id"], ["customer.id"], name=op.f("fk_shipment_line_consignee_id_customer")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lot.id"], name=op.f("fk_shipment_line_lot_id_lot")),
        sa.ForeignKeyConstraint(
            ["movement_id"],
            ["inventory_movement.id"],
            name=op.f("fk_shipment_line_movement_id_inventory_movement"),
        ),
        sa.ForeignKeyConstraint(
            ["shipment_id"], ["shipment.id"], name=op.f("fk_shipment_line_shipment_id_shipment")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipment_line")),
        sa.UniqueConstraint("movement_id", name=op.f("uq_shipment_line_movement_id")),
    )
    op.create_index(
        op.f("ix_shipment_line_consignee_id"), "shipment_line", ["consignee_id"], unique=False
    )
    op.create_index(op.f("ix_shipment_line_lot_id"), "shipment_line", ["lot_id"], unique=False)
    op.create_index(
        op.f("ix_shipment_line_shipment_id"), "shipment_line", ["shipment_id"], unique=False
    )
    op.add_column(
        "item",
        sa.Column(
            "standard_cost", sa.Numeric(precision=14, scale=4), nullable=False, server_default="0"
        ),
    )
    op.add_column("lot", sa.Column("status_reason", sa.Text(), nullable=False, server_default=""))
    op.add_column(
        "lot",
        sa.Column(
            "status_changed_by", sa.String(length=64), nullable=False, server_default="system"
        ),
    )
    op.add_column("lot", sa.Column("status_process_id", sa.String(length=200), nullable=True))
    op.add_column(
        "lot", sa.Column("origin", sa.String(length=20), nullable=False, server_default="stock")
    )
    op.add_column("lot", sa.Column("purchase_order_line_id", sa.Integer(), nullable=True))
    op.add_column("lot", sa.Column("work_order_id", sa.Integer(), nullable=True))
    op.add_column(
        "lot", sa.Column("received_quantity", sa.Numeric(precision=14, scale=4), nullable=True)
    )
    op.create_index(
        op.f("ix_lot_purchase_order_line_id"), "lot", ["purchase_order_line_id"], unique=False
    )
    op.create_index(op.f("ix_lot_work_order_id"), "lot", ["work_order_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_lot_work_order_id_work_order"), "lot", "work_order", ["work_order_id"], ["id"]
    )
    op.create_foreign_key(
        op.f("fk_lot_purchase_order_line_id_purchase_order_line"),
        "lot",
        "purchase_order_line",
        ["purchase_order_line_id"],
        ["id"],
    )
    op.add_column("purchase_order", sa.Column("process_id", sa.String(length=200), nullable=True))
    op.add_column("purchase_order", sa.Column("requested_by", sa.String(length=64), nullable=True))
    op.add_column(
        "purchase_order",
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False, server_default="0"),
    )
    op.add_column(
        "purchase_order",
        sa.Column("currency", sa.String(length=3), nullable=False, server_default="EUR"),
    )
    op.add_column("purchase_order", sa.Column("due_on", sa.Date(), nullable=True))
    op.add_column("purchase_order", sa.Column("promised_on", sa.Date(), nullable=True))
    op.add_column(
        "purchase_order",
        sa.Column("supplier_reference", sa.String(length=60), nullable=False, server_default=""),
    )
    op.add_column(
        "purchase_order",
        sa.Column("asn_reference", sa.String(length=60), nullable=False, server_default=""),
    )
    op.add_column("purchase_order", sa.Column("customer_order_id", sa.Integer(), nullable=True))
    op.add_column(
        "purchase_order", sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "purchase_order", sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "purchase_order", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_unique_constraint(
        op.f("uq_purchase_order_process_id"), "purchase_order", ["process_id"]
    )
    op.create_foreign_key(
        op.f("fk_purchase_order_customer_order_id_customer_order"),
        "purchase_order",
        "customer_order",
        ["customer_order_id"],
        ["id"],
    )
    op.add_column(
        "purchase_order_line",
        sa.Column("line_no", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column(
        "purchase_order_line",
        sa.Column(
            "unit_price", sa.Numeric(precision=14, scale=4), nullable=False, server_default="0"
        ),
    )
    op.add_column(
        "purchase_order_line",
        sa.Column("uom", sa.String(length=10), nullable=False, server_default="ea"),
    )
    op.add_column("work_order", sa.Column("process_id", sa.String(length=200), nullable=True))
    op.add_column("work_order", sa.Column("requested_by", sa.String(length=64), nullable=True))
    op.add_column("work_order", sa.Column("due_on", sa.Date(), nullable=True))
    op.add_column(
        "work_order",
        sa.Column(
            "produced_quantity",
            sa.Numeric(precision=14, scale=4),
            nullable=False,
            server_default="0",
        ),
    )
    op.add_column("work_order", sa.Column("customer_order_id", sa.Integer(), nullable=True))
    op.add_column("work_order", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("work_order", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_unique_constraint(op.f("uq_work_order_process_id"), "work_order", ["process_id"])
    op.create_foreign_key(
        op.f("fk_work_order_customer_order_id_customer_order"),
        "work_order",
        "customer_order",
        ["customer_order_id"],
        ["id"],
    )
    # ### end Alembic commands ###
    op.drop_constraint(op.f("ck_lot_status"), "lot", type_="check")
    op.create_check_constraint(
        "status",
        "lot",
        "status IN ('QUARANTINE', 'RELEASED', 'ON_HOLD', 'REJECTED', 'CONSUMED', 'SHIPPED',"
        " 'RECALLED', 'EXPIRED')",
    )
    op.execute(
        "INSERT INTO lot_status_transition (from_status, to_status) VALUES "
        + ", ".join(f"('{a}', '{b}')" for a, b in TRANSITIONS)
    )
    op.execute(
        "INSERT INTO doa_threshold (level, up_to_amount, approver_group, currency) VALUES "
        "(1, 5000, 'buyer', 'EUR'), (2, 50000, 'purchasing-manager', 'EUR'),"
        " (3, NULL, 'finance', 'EUR')"
    )
    op.execute(
        "INSERT INTO lot_number_rule (origin, pattern) VALUES "
        "('receipt', 'R{YY}{MM}-{SEQ:05}'), ('production', 'F{YY}{MM}-{SEQ:05}')"
    )
    op.execute(
        "INSERT INTO app_group (name, description) VALUES "
        "('purchasing-manager', 'Purchasing managers'), ('finance', 'Finance approvers')"
        " ON CONFLICT (name) DO NOTHING"
    )
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.drop_column("item", "standard_cost")
    op.execute("DROP TRIGGER inventory_movement_guard ON inventory_movement")
    op.execute("DROP FUNCTION inventory_movement_check()")
    op.execute("DROP TRIGGER lot_status_history ON lot")
    op.execute("DROP TRIGGER lot_status_guard ON lot")
    op.execute("DROP FUNCTION lot_status_check()")
    op.execute("DROP FUNCTION lot_status_record()")
    op.drop_constraint(op.f("ck_lot_status"), "lot", type_="check")
    op.execute("UPDATE lot SET status = 'REJECTED' WHERE status = 'EXPIRED'")
    op.create_check_constraint(
        "status",
        "lot",
        "status IN ('QUARANTINE', 'RELEASED', 'ON_HOLD', 'REJECTED', 'CONSUMED', 'SHIPPED',"
        " 'RECALLED')",
    )
    # ### commands auto generated by Alembic - please adjust! ###
    op.drop_constraint(
        op.f("fk_work_order_customer_order_id_customer_order"), "work_order", type_="foreignkey"
    )
    op.drop_constraint(op.f("uq_work_order_process_id"), "work_order", type_="unique")
    op.drop_column("work_order", "closed_at")
    op.drop_column("work_order", "released_at")
    op.drop_column("work_order", "customer_order_id")
    op.drop_column("work_order", "produced_quantity")
    op.drop_column("work_order", "due_on")
    op.drop_column("work_order", "requested_by")
    op.drop_column("work_order", "process_id")
    op.drop_column("purchase_order_line", "uom")
    op.drop_column("purchase_order_line", "unit_price")
    op.drop_column("purchase_order_line", "line_no")
    op.drop_constraint(
        op.f("fk_purchase_order_customer_order_id_customer_order"),
        "purchase_order",
        type_="foreignkey",
    )
    op.drop_constraint(op.f("uq_purchase_order_process_id"), "purchase_order", type_="unique")
    op.drop_column("purchase_order", "closed_at")
    op.drop_column("purchase_order", "issued_at")
    op.drop_column("purchase_order", "approved_at")
    op.drop_column("purchase_order", "customer_order_id")
    op.drop_column("purchase_order", "asn_reference")
    op.drop_column("purchase_order", "supplier_reference")
    op.drop_column("purchase_order", "promised_on")
    op.drop_column("purchase_order", "due_on")
    op.drop_column("purchase_order", "currency")
    op.drop_column("purchase_order", "amount")
    op.drop_column("purchase_order", "requested_by")
    op.drop_column("purchase_order", "process_id")
    op.drop_constraint(
        op.f("fk_lot_purchase_order_line_id_purchase_order_line"), "lot", type_="foreignkey"
    )
    op.drop_constraint(op.f("fk_lot_work_order_id_work_order"), "lot", type_="foreignkey")
    op.drop_index(op.f("ix_lot_work_order_id"), table_name="lot")
    op.drop_index(op.f("ix_lot_purchase_order_line_id"), table_name="lot")
    op.drop_column("lot", "received_quantity")
    op.drop_column("lot", "work_order_id")
    op.drop_column("lot", "purchase_order_line_id")
    op.drop_column("lot", "origin")
    op.drop_column("lot", "status_process_id")
    op.drop_column("lot", "status_changed_by")
    op.drop_column("lot", "status_reason")
    op.drop_index(op.f("ix_shipment_line_shipment_id"), table_name="shipment_line")
    op.drop_index(op.f("ix_shipment_line_lot_id"), table_name="shipment_line")
    op.drop_index(op.f("ix_shipment_line_consignee_id"), table_name="shipment_line")
    op.drop_table("shipment_line")
    op.drop_index(op.f("ix_genealogy_edge_work_order_id"), table_name="genealogy_edge")
    op.drop_index("ix_genealogy_edge_child", table_name="genealogy_edge")
    op.drop_table("genealogy_edge")
    op.drop_index("ix_serial_number_serial", table_name="serial_number")
    op.drop_index(op.f("ix_serial_number_lot_id"), table_name="serial_number")
    op.drop_table("serial_number")
    op.drop_index(op.f("ix_receipt_purchase_order_line_id"), table_name="receipt")
    op.drop_index(op.f("ix_receipt_process_id"), table_name="receipt")
    op.drop_table("receipt")
    op.drop_index(op.f("ix_lot_status_change_lot_id"), table_name="lot_status_change")
    op.drop_table("lot_status_change")
    op.drop_index(op.f("ix_inventory_movement_lot_id"), table_name="inventory_movement")
    op.drop_table("inventory_movement")
    op.drop_index(op.f("ix_inspection_process_id"), table_name="inspection")
    op.drop_index(op.f("ix_inspection_lot_id"), table_name="inspection")
    op.drop_table("inspection")
    op.drop_index(op.f("ix_shipment_customer_id"), table_name="shipment")
    op.drop_table("shipment")
    op.drop_table("supplier_scorecard")
    op.drop_index(op.f("ix_customer_order_customer_id"), table_name="customer_order")
    op.drop_table("customer_order")
    op.drop_table("lot_status_transition")
    op.drop_table("lot_number_rule")
    op.drop_table("doa_threshold")
    op.drop_table("customer")
    # ### end Alembic commands ###
    for seq in SEQUENCES:
        op.execute(f"DROP SEQUENCE {seq}")
