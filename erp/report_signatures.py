"""The signed record manifestation (21 CFR Part 11 §11.50): for every electronic signature given
in a process, what was signed, the printed name of the signer, the date and time, the meaning of
the signature, the hash linking it to the record (§11.70), and whether it still fits."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from erp.models import ESignature
from erp.queries import process_signatures
from erp.reports import Report, Section, Translate, plain, recorded, row, text_of
from erp.signatures import signature_problem


class NoSignatures(LookupError):
    """The process holds no electronic signature (yet)."""

    def __init__(self, process_id: str) -> None:
        super().__init__(f"no electronic signature in {process_id}")
        self.process_id = process_id


def _content(signature: ESignature) -> dict[str, object]:
    return signature.signed_content if isinstance(signature.signed_content, dict) else {}


async def signed_record_report(
    session: AsyncSession, process_id: str, title: str, _: Translate
) -> Report:
    """Every signature of the process `process_id` (its human tasks), oldest first."""
    _ = plain(_)
    signatures = await process_signatures(session, process_id)
    if not signatures:
        raise NoSignatures(process_id)
    checks = [await signature_problem(session, s) for s in signatures]
    summary = Section(
        _("Signatures"),
        columns=[
            _("Printed name"),
            _("User"),
            _("Signed at (UTC)"),
            _("Meaning"),
            _("What was signed"),
            _("Still fits the record"),
        ],
        rows=[
            row(
                s.printed_name,
                s.signer,
                s.signed_at,
                recorded(_, "signature meaning", s.meaning),
                _content(s).get("title") or f"{s.record_type} {s.record_id}",
                _("yes") if not problem else _("NO: %(problem)s", problem=problem),
            )
            for s, problem in zip(signatures, checks, strict=True)
        ],
        widths=[1.2, 0.8, 1.3, 0.9, 2.2, 1.6],
    )
    sections = [
        Section(
            _("Signed record"),
            facts=[(_("Process"), process_id), (_("Title"), title)],
        ),
        summary,
    ]
    for number, (signature, problem) in enumerate(zip(signatures, checks, strict=True), 1):
        sections.append(_one(number, signature, problem, _))
    return Report(
        kind="signatures",
        title=_("Signed record manifestation"),
        subject=process_id,
        sections=sections,
    )


def _one(number: int, s: ESignature, problem: str, _: Translate) -> Section:
    content = _content(s)
    context = content.get("context")
    facts = [
        (_("Printed name of the signer"), s.printed_name),
        (_("User name"), s.signer),
        (_("Date and time (UTC)"), text_of(s.signed_at)),
        (_("Meaning of the signature"), recorded(_, "signature meaning", s.meaning)),
        (_("Authenticated by"), s.authenticated_by),
        (_("Signed record"), f"{s.record_type} {s.record_id}"),
        (_("Task"), text_of(content.get("title"))),
        (_("Business key"), text_of(content.get("business_key"))),
        (_("Outcome signed"), recorded(_, "outcome", content.get("outcome"))),
        (_("Comment"), text_of(content.get("comment"))),
        (_("Fields"), text_of(content.get("fields") or {})),
    ]
    if isinstance(context, dict):
        facts += [(f"· {key}", text_of(value)) for key, value in context.items()]
    facts += [
        (_("SHA-256 of the signed content"), s.record_hash),
        (
            _("Check against the record now"),
            problem or _("fits: content, decision, task and audit row"),
        ),
        (_("Signed content (canonical JSON)"), text_of(content)),
    ]
    return Section(_("Signature %(n)s", n=number), facts=facts)
