"""The Temporal worker: registers every workflow and activity of Lotline.

Run alone against an existing cluster and database (the production shape, N replicas):
    DATABASE_URL=... TEMPORAL_ADDRESS=... python worker.py
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Interceptor, Worker

from activities.capa import CapaActivities
from activities.change_control import ChangeControlActivities
from activities.customer_order import CustomerOrderActivities
from activities.human_task import HumanTaskActivities
from activities.liveness import LivenessInterceptor
from activities.lot_expiry import LotExpiryActivities
from activities.nonconformance import NonconformanceActivities
from activities.notify import NotifyActivities
from activities.process import ProcessActivities
from activities.production import WorkOrderActivities
from activities.purchase import PurchaseActivities
from activities.recall import RecallActivities
from activities.recall_notice import RecallNoticeActivities
from activities.shipping import ShipmentActivities
from erp.db import make_engine, make_session_factory
from settings import Settings
from workflows.approval import ApprovalRequestWorkflow
from workflows.capa import CapaWorkflow
from workflows.change_control import ChangeControlWorkflow
from workflows.digest import ApproverDigestWorkflow
from workflows.human_task import HumanTaskWorkflow
from workflows.lot_expiry import LotExpiryWorkflow
from workflows.nonconformance import NonconformanceWorkflow
from workflows.procure_to_deliver import ProcureToDeliverWorkflow
from workflows.purchase import PurchaseWorkflow
from workflows.recall import RecallWorkflow
from workflows.recall_notice import RecallNoticeWorkflow
from workflows.shipment import ShipmentWorkflow
from workflows.work_order import WorkOrderWorkflow

WORKFLOWS: Sequence[type] = (
    HumanTaskWorkflow,
    ApprovalRequestWorkflow,
    ChangeControlWorkflow,
    PurchaseWorkflow,
    WorkOrderWorkflow,
    ShipmentWorkflow,
    ProcureToDeliverWorkflow,
    LotExpiryWorkflow,
    CapaWorkflow,
    NonconformanceWorkflow,
    RecallNoticeWorkflow,
    RecallWorkflow,
    ApproverDigestWorkflow,
)

# Worker options of the workflow side, shared with the benchmark's trivial worker (its ceiling
# must run under the same options as the workflows it is compared with)
WORKFLOW_TUNING: dict[str, Any] = {}


def activities_for(session_factory: async_sessionmaker[AsyncSession]) -> list[Callable[..., Any]]:
    human = HumanTaskActivities(session_factory)
    process = ProcessActivities(session_factory)
    change = ChangeControlActivities(session_factory)
    return [
        change.register_change,
        change.set_change_status,
        change.record_triage,
        change.compute_change_impact,
        change.record_change_assessment,
        change.revise_change,
        change.apply_change,
        human.open_task,
        human.remind_task,
        human.escalate_task,
        human.record_decision,
        human.cancel_task,
        process.register_process,
        process.update_process,
        # procure-to-deliver: each activities class lists its own
        *PurchaseActivities(session_factory).activities(),
        *WorkOrderActivities(session_factory).activities(),
        *ShipmentActivities(session_factory).activities(),
        *CustomerOrderActivities(session_factory).activities(),
        *LotExpiryActivities(session_factory).activities(),
        *CapaActivities(session_factory).activities(),
        *NonconformanceActivities(session_factory).activities(),
        *RecallNoticeActivities(session_factory).activities(),
        *RecallActivities(session_factory, Settings.from_env().holidays_country).activities(),
        *NotifyActivities(session_factory, Settings.from_env().public_url).activities(),
    ]


def build_worker(
    client: Client,
    task_queue: str,
    session_factory: async_sessionmaker[AsyncSession],
    *,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """The worker of every Lotline workflow and activity; `interceptors` come after ours."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=activities_for(session_factory),
        # a killed worker's activities are retried within seconds (activities/liveness.py)
        interceptors=[LivenessInterceptor(), *interceptors],
        **WORKFLOW_TUNING,
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.require_temporal_address(),
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


async def main(interceptors: Sequence[Interceptor] = ()) -> None:
    """Poll until SIGINT/SIGTERM. The reliability tests add fault-injecting `interceptors`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    settings = Settings.from_env()
    engine = make_engine(settings.require_database_url())
    client = await connect(settings)
    worker = build_worker(
        client, settings.task_queue, make_session_factory(engine), interceptors=interceptors
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    logging.info(
        "worker polling task queue %r on %s", settings.task_queue, settings.temporal_address
    )
    # the outbox dispatcher runs beside the worker (docs/notifications.md); imported here, not at
    # the top: test modules that define workflows import this module, the workflow sandbox
    # re-imports them, and the dispatcher's httpx may not be imported inside the sandbox
    from erp.dispatcher import OutboxDispatcher, SmtpConfig

    dispatcher = OutboxDispatcher(
        make_session_factory(engine), smtp=SmtpConfig.from_settings(settings)
    )
    async with worker:
        delivering = asyncio.create_task(dispatcher.run(stop))
        await stop.wait()
        await delivering
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
