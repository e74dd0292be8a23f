"""Custom search attributes Nurture sets on every enrollment workflow.

They hold IDs, numbers and states only — never an email address or other personal data:
search attributes are not encrypted by a payload codec. A Temporal cluster must have them
registered (``nurture temporal setup`` does it; docs/production.md lists them for Cloud).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

KIND = SearchAttributeKey.for_keyword("NurtureKind")
DEFINITION_ID = SearchAttributeKey.for_keyword("NurtureDefinitionId")
DEFINITION_VERSION = SearchAttributeKey.for_int("NurtureDefinitionVersion")
ENROLLMENT_ID = SearchAttributeKey.for_keyword("NurtureEnrollmentId")
RECORD_ID = SearchAttributeKey.for_keyword("NurtureRecordId")
COMPANY_ID = SearchAttributeKey.for_keyword("NurtureCompanyId")
SENDER_ID = SearchAttributeKey.for_keyword("NurtureSenderId")
STEP = SearchAttributeKey.for_int("NurtureStep")
STATUS = SearchAttributeKey.for_keyword("NurtureStatus")
EXIT_REASON = SearchAttributeKey.for_keyword("NurtureExitReason")

ALL_KEYS: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    KIND, DEFINITION_ID, DEFINITION_VERSION, ENROLLMENT_ID, RECORD_ID, COMPANY_ID, SENDER_ID, STEP, STATUS, EXIT_REASON,
)


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    out = []
    for key in ALL_KEYS:
        kind = "Int" if key.indexed_value_type.name == "INT" else "Keyword"
        out += ["--search-attribute", f"{key.name}={kind}"]
    return out


def enrollment_attributes(
    *, kind: str, definition_id: str, version: int, enrollment_id: str, record_id: str,
    company_id: str | None, sender_id: str | None, step: int, status: str,
) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(KIND, kind),
        SearchAttributePair(DEFINITION_ID, definition_id),
        SearchAttributePair(DEFINITION_VERSION, version),
        SearchAttributePair(ENROLLMENT_ID, enrollment_id),
        SearchAttributePair(RECORD_ID, record_id),
        SearchAttributePair(STEP, step),
        SearchAttributePair(STATUS, status),
    ]
    if company_id:
        pairs.append(SearchAttributePair(COMPANY_ID, company_id))
    if sender_id:
        pairs.append(SearchAttributePair(SENDER_ID, sender_id))
    return TypedSearchAttributes(pairs)
