"""The Mailbox page (the embedded default's mail): a person sees the mail addressed to them, an
administrator everyone's; the mail comes from a real workflow through the dispatcher."""

from __future__ import annotations

from sqlalchemy import select, update

from erp.dispatcher import OutboxDispatcher
from erp.models import AppUser, Outbox
from tests.activities.test_notify_dispatcher import NO_WAIT
from tests.helpers import eventually
from tests.ui.conftest import text_of


async def test_each_person_sees_their_mail_and_admins_see_all(site):
    process_id = await site.start_approval(title="Approve SOP-QA-099 rev A")
    await site.open_task(process_id)
    dispatcher = OutboxDispatcher(site.sessions, smtp=None, retry=NO_WAIT)

    async def delivered() -> bool:
        await dispatcher.dispatch_once()
        async with site.sessions() as session:
            pending = await session.scalar(select(Outbox.id).where(Outbox.status != "sent"))
        return pending is None

    await eventually(delivered, what="the outbox to be delivered")

    bob = await site.as_user("bob")  # qa: the task's approvers
    page = await bob.get("/mailbox")
    assert page.status_code == 200
    assert "New task: Approve SOP-QA-099 rev A" in text_of(page.text)
    assert 'href="/mailbox" aria-current="page"' in page.text
    alice = await site.as_user("alice")  # the initiator, not an approver
    assert "Approve SOP-QA-099" not in text_of((await alice.get("/mailbox")).text)
    # ?everyone is for administrators only
    assert "Approve SOP-QA-099" not in text_of((await alice.get("/mailbox?everyone=true")).text)

    admin = await site.as_user("admin")
    everyone = text_of((await admin.get("/mailbox?everyone=true")).text)
    assert "bob@example.com" in everyone and "carol@example.com" in everyone

    async with site.sessions() as session, session.begin():
        await session.execute(
            update(AppUser).where(AppUser.username == "carol").values(locale="zh_Hans")
        )
    carol = await site.as_user("carol")
    chinese = text_of((await carol.get("/mailbox")).text)
    assert "邮箱" in chinese and "收到时间" in chinese

    # a message the dispatcher gave up on: the admin sees it with a Retry button
    async with site.sessions() as session, session.begin():
        notice = await session.scalar(select(Outbox).order_by(Outbox.id).limit(1))
        assert notice is not None
        notice.status, notice.attempts, notice.last_error = "failed", 8, "SMTP relay down"
    listed = await admin.get("/mailbox")
    assert "Messages that could not be delivered" in text_of(listed.text)
    assert "SMTP relay down" in text_of(listed.text)
    assert f'action="/mailbox/outbox/{notice.id}/retry"' in listed.text
    assert f'action="/mailbox/outbox/{notice.id}/retry"' not in (await bob.get("/mailbox")).text
    assert (await bob.post(f"/mailbox/outbox/{notice.id}/retry")).status_code == 403
    retried = await admin.post(f"/mailbox/outbox/{notice.id}/retry")
    assert retried.status_code == 303
    async with site.sessions() as session:
        again = await session.get_one(Outbox, notice.id)
    assert (again.status, again.attempts) == ("pending", 0)
    twice = await admin.post(f"/mailbox/outbox/{notice.id}/retry")
    assert twice.status_code == 409 and "not failed" in text_of(twice.text)
    await eventually(delivered, what="the retried message to be delivered")
