"""Strings that came from a student (reasons, output, file and folder names) made safe for
the place they are written to: a terminal, a CSV cell, XML, a GitHub workflow command.

A student's string is data: never markup (rich), a formula (a spreadsheet), a terminal
escape (window title, clipboard, clear screen), a forged line, or a character that makes
a file unreadable (XML).
"""
from __future__ import annotations

import re

from rich.markup import escape

# C0 controls (newline and tab included: a newline in a name forges a line), DEL, C1
# controls (ESC's 8-bit forms), and the bidirectional overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Characters XML 1.0 cannot hold at all, even escaped.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# OWASP's CSV injection rule: a cell starting with one of these is a formula in Excel,
# LibreOffice or Google Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _visible(m: re.Match) -> str:
    c = m.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or (
        f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def printable(text: object) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``)."""
    return _CONTROL.sub(_visible, str(text))


def for_terminal(text: object) -> str:
    """``text`` to put inside a rich markup string: control characters shown as escapes,
    and ``[`` made literal."""
    return escape(printable(text))


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab
    or carriage return is quoted with an apostrophe (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def from_csv_cell(text: str) -> str:
    """A cell as ``csv_cell`` wrote it, without the apostrophe it added."""
    return text[1:] if text[:1] == "'" and text[1:].startswith(_FORMULA_START) else text


def xml_text(text: object) -> str:
    """``text`` without the characters XML 1.0 cannot hold (ElementTree escapes the rest)."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def github_message(text: object) -> str:
    """The message of a GitHub Actions workflow command (``::error ...::MESSAGE``): its
    own escapes for ``%``, CR and LF, and the other control characters shown."""
    return printable(str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def github_property(text: object) -> str:
    """A property value of a workflow command (``file=``, ``title=``): the message's
    escapes, and ``:`` and ``,``, which end a property."""
    return github_message(text).replace(":", "%3A").replace(",", "%2C")
