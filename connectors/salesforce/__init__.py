"""Salesforce Service Cloud: Outbound Messages (SOAP) as a doorbell, REST for the records
(crm-formats §3)."""
