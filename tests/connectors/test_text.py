"""Email and HTML bodies reduced to the newest reply's plain text."""

from __future__ import annotations

from connectors.text import clean_body, html_to_text, newest_reply


def test_html_becomes_text_keeping_list_layout_and_dropping_quoted_history() -> None:
    html = (
        "<div>Thanks, that <b>fixed</b> it!<ul><li>reinstalled</li><li>logged in</li></ul></div>"
        '<div class="gmail_quote">On Tue, Sam wrote:<blockquote>Please reinstall.</blockquote></div>'
    )
    text = html_to_text(html)
    assert text.startswith("Thanks, that fixed it!")
    assert "* reinstalled" in text and "* logged in" in text
    assert "Please reinstall" not in text


def test_quoted_history_headers_and_signature_are_cut_from_email_text() -> None:
    email = (
        "Thanks, that fixed it!\r\n\r\nBest,\r\nDana\r\n\r\n"
        "On Tue, Jan 7, 2025 at 3:00 PM Support <s@example.com> wrote:\r\n"
        "> Please reinstall the app.\r\n> Sam"
    )
    assert clean_body(text=email, email=True) == "Thanks, that fixed it!"
    assert newest_reply("Just a plain message\n-- \nSam\nAcme Support") == "Just a plain message"


def test_chat_text_is_kept_as_written_apart_from_whitespace() -> None:
    assert clean_body(text="Hi!\r\n\r\n\r\n\r\nOn Monday I wrote:  \n> nothing") == (
        "Hi!\n\nOn Monday I wrote:\n> nothing"
    )


def test_a_message_that_is_all_quote_is_not_emptied() -> None:
    assert clean_body(text="> only a quote", email=True) == "> only a quote"
