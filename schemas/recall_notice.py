"""Inputs and results of the recall notice's activities (one notice per consignee)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel

from schemas import wording
from schemas.production import quantity_text
from schemas.recall import ConsigneeResponse, RecallReturnReceived


class SendRecallNoticeInput(BaseModel):
    process_id: str  # <recall id>.notice-<customer code>
    recall_process_id: str
    consignee_code: str
    drill: bool = False


class ConsigneePosition(BaseModel):
    """Where a consignee stands: what it received and what it has told us (or we received)."""

    status: str  # notified | responded | escalated | reconciled
    shipped_quantity: Decimal
    acknowledged: bool = False
    quantity_on_hand: Decimal | None = None
    quantity_returned: Decimal = Decimal(0)
    quantity_corrected: Decimal = Decimal(0)
    quantity_received_back: Decimal = Decimal(0)

    @property
    def reconciled(self) -> bool:
        """Everything shipped to this consignee is accounted for. With S shipped, R returned
        and C corrected (as the consignee last said), H on hand (None: not said) and B received
        back at our dock (the sum of the returns we booked), that is either

        - B + C >= S: every unit is back in our hands or was corrected in the field, or
        - H == 0 and B >= R: the consignee holds none any more, and all it says it sent back
          has arrived; the units neither returned nor corrected were used or are gone, as the
          consignee declared (a recall's "accounted for" in the consignee's own answer).

        A consignee that still holds units, or whose returns have not all arrived, is not."""
        if self.quantity_received_back + self.quantity_corrected >= self.shipped_quantity:
            return True
        return self.quantity_on_hand == 0 and self.quantity_received_back >= self.quantity_returned

    def response_problem(self, response: ConsigneeResponse) -> str:
        """Why this answer cannot be true ('' when it can; a `Said`, translated): a consignee cannot hold, return and
        correct more than it received. An answer states the consignee's totals so far."""
        said = (
            response.quantity_returned
            + response.quantity_corrected
            + (response.quantity_on_hand or Decimal(0))
        )
        if said > self.shipped_quantity:
            return wording.said(
                "returned %(returned)s + corrected %(corrected)s + on hand %(on_hand)s = "
                "%(total)s is more than the %(shipped)s shipped to this consignee",
                returned=quantity_text(response.quantity_returned),
                corrected=quantity_text(response.quantity_corrected),
                on_hand=quantity_text(response.quantity_on_hand or Decimal(0)),
                total=quantity_text(said),
                shipped=quantity_text(self.shipped_quantity),
            )
        return ""

    def return_problem(self, quantity: Decimal) -> str:
        """Why this return cannot be booked ('' when it can): more would be back than shipped."""
        back = self.quantity_received_back + quantity
        if back > self.shipped_quantity:
            return wording.said(
                "%(quantity)s more would make %(back)s received back, "
                "more than the %(shipped)s shipped to this consignee",
                quantity=quantity_text(quantity),
                back=quantity_text(back),
                shipped=quantity_text(self.shipped_quantity),
            )
        return ""

    def with_response(self, response: ConsigneeResponse) -> ConsigneePosition:
        """The position once this answer is taken (the latest answer replaces the earlier)."""
        return self.model_copy(
            update={
                "acknowledged": self.acknowledged or response.acknowledged,
                "quantity_on_hand": response.quantity_on_hand,
                "quantity_returned": response.quantity_returned,
                "quantity_corrected": response.quantity_corrected,
            }
        )

    def with_return(self, quantity: Decimal) -> ConsigneePosition:
        return self.model_copy(
            update={"quantity_received_back": self.quantity_received_back + quantity}
        )


class SentRecallNotice(BaseModel):
    recall_number: str
    consignee_code: str
    consignee_name: str
    lot_numbers: list[str]  # the lots this consignee received: a return names one of them
    notified_at: datetime
    channels: list[str]  # email, webhook; none in a drill
    position: ConsigneePosition


class SendReminderInput(BaseModel):
    process_id: str
    recall_process_id: str
    consignee_code: str
    reminder: int  # 1, 2 …
    drill: bool = False


class EscalateConsigneeInput(BaseModel):
    process_id: str
    recall_process_id: str
    consignee_code: str
    task_workflow_id: str


class RecordConsigneeResponseInput(BaseModel):
    process_id: str
    recall_process_id: str
    event_id: str
    response: ConsigneeResponse
    recorded_by: str


class RecordRecallReturnInput(BaseModel):
    process_id: str
    recall_process_id: str
    event_id: str
    received: RecallReturnReceived
    received_by: str
