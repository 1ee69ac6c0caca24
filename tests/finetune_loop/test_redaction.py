"""PII never reaches training text, and the same value keeps one placeholder per conversation."""

from __future__ import annotations

from core.settings import Settings
from finetune_loop.redaction import Redactor, find_pii


def test_emails_phones_cards_ibans_and_order_ids_get_consistent_placeholders() -> None:
    redact = Redactor(Settings(_env_file=None).finetune_order_id_patterns)  # type: ignore[call-arg]
    first = redact(
        "I'm dana@example.com, call +1 415 555 2671. Card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00, order #A12345."
    )
    assert first == (
        "I'm <EMAIL_1>, call <PHONE_1>. Card <CARD_1>, IBAN <IBAN_1>, order #<ORDER_ID_1>."
    )
    second = redact("Again: DANA@example.com and ORDER A12345, and bob@example.org")
    assert second == "Again: <EMAIL_1> and ORDER <ORDER_ID_1>, and <EMAIL_2>"


def test_a_number_that_fails_the_luhn_check_is_not_a_card() -> None:
    kinds = {s.kind for s in find_pii("card 4111 1111 1111 1112 please")}
    assert "CREDIT_CARD" not in kinds
    assert "CREDIT_CARD" in {s.kind for s in find_pii("card 4111 1111 1111 1111 please")}


def test_plain_support_text_is_left_alone() -> None:
    text = "is the order displayed correct and ready to send off to be made?"
    assert Redactor(Settings(_env_file=None).finetune_order_id_patterns)(text) == text  # type: ignore[call-arg]
