"""Search attribute keys; values are IDs or HMACs, never personal data (rule 2)."""

from temporalio.common import SearchAttributeKey

ROOM_ID = SearchAttributeKey.for_keyword("RoomId")
AGENT_ID = SearchAttributeKey.for_keyword("AgentId")
KIND = SearchAttributeKey.for_keyword("Kind")
REQUEST_ID = SearchAttributeKey.for_keyword("RequestId")
SUBJECT_REF = SearchAttributeKey.for_keyword("SubjectRef")
# A GDPR request's legal deadline (one month after it was made): overdue ones are
# `DueAt < "<now>" AND ExecutionStatus = "Running"`.
DUE_AT = SearchAttributeKey.for_datetime("DueAt")

# Their types, registered on the dev server at start and by `iaf migrate` elsewhere.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "RoomId": "Keyword",
    "AgentId": "Keyword",
    "Kind": "Keyword",
    "RequestId": "Keyword",
    "SubjectRef": "Keyword",
    "DueAt": "Datetime",
}
