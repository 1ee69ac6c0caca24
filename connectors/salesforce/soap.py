"""Outbound Message envelopes: parse what Salesforce sends, build the Ack it expects.

Salesforce signs nothing; the check is a secret in the endpoint URL (connectors/salesforce/
webhook.py), plus TLS and IP allow-listing in front of us. The XML is untrusted input, so it is
parsed with defusedxml (no entity expansion, no external entities).
"""

from __future__ import annotations

from dataclasses import dataclass

from defusedxml import ElementTree

from connectors.errors import RecordError

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"

ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
    " <soapenv:Body>\n"
    '  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse>\n'
    " </soapenv:Body>\n"
    "</soapenv:Envelope>\n"
)


@dataclass(frozen=True)
class Notification:
    notification_id: str
    object_type: str  # e.g. "Case"
    record_id: str


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    notifications: list[Notification]


def parse(raw: bytes) -> OutboundMessage:
    try:
        root = ElementTree.fromstring(raw)
    except Exception as exc:  # defusedxml raises its own errors for forbidden constructs
        raise RecordError(f"body is not a readable SOAP envelope: {exc}") from None
    body = root.find(f"{{{SOAP}}}Body")
    message = body.find(f"{{{OUTBOUND}}}notifications") if body is not None else None
    if message is None:
        raise RecordError("no Outbound Message notifications element")
    org = (message.findtext(f"{{{OUTBOUND}}}OrganizationId") or "").strip()
    notifications = []
    for item in message.findall(f"{{{OUTBOUND}}}Notification"):
        notification_id = (item.findtext(f"{{{OUTBOUND}}}Id") or "").strip()
        sobject = item.find(f"{{{OUTBOUND}}}sObject")
        record_id = (
            (sobject.findtext(f"{{{SOBJECT}}}Id") or "").strip() if sobject is not None else ""
        )
        if not notification_id or not record_id:
            raise RecordError("a Notification lacks its Id or its sObject Id")
        xsi_type = (
            sobject.get("{http://www.w3.org/2001/XMLSchema-instance}type", "")
            if sobject is not None
            else ""
        )
        notifications.append(Notification(notification_id, xsi_type.split(":")[-1], record_id))
    if not org or not notifications:
        raise RecordError("missing OrganizationId or notifications")
    return OutboundMessage(org, notifications)
