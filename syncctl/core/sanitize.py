"""Text from servers and files we do not control, made safe to print and store, secrets scrubbed.

A remote can put terminal escape sequences into an error body or a field name, and can echo our
credentials back in a message, raw, URL-encoded or inside a Basic/Bearer header it quotes.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

# C0 and C1 control characters except tab and newline, plus DEL: what a terminal interprets.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_QUERY = re.compile(r"(https?://[^\s?#]*)\?[^\s#]*")


def has_control_chars(text: str) -> bool:
    return _ANY_CONTROL.search(text) is not None


def strip_control(text: str, *, keep_newlines: bool = False) -> str:
    """Text a terminal shows as text: control characters become '?', lone surrogates '\ufffd'."""
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    if keep_newlines:
        return _CONTROL.sub("?", text)
    return _ANY_CONTROL.sub("?", text)


def one_line(text: str, limit: int = 500) -> str:
    """A message from a remote as one printable line of bounded length."""
    cleaned = strip_control(" ".join(text.split()))
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def drop_query_strings(text: str) -> str:
    """URLs in a message without their query: a server may have put anything there, secrets included."""
    return _QUERY.sub(r"\1?…", text)


class Scrubber:
    """Replaces every known secret in a text, in each form it can take on the wire."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str, *, user: str | None = None) -> None:
        if not secret or len(secret) < 3:
            return  # too short to be a real secret; replacing it would mangle every message
        forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}
        forms.add(base64.b64encode(secret.encode()).decode())
        if user is not None:
            pair = f"{user}:{secret}"
            forms |= {pair, quote(pair, safe=""), quote_plus(pair), base64.b64encode(pair.encode()).decode()}
        for form in list(forms):
            forms.add(form.lower())
            forms.add(form.upper())
        self._forms |= {form for form in forms if len(form) >= 3}

    def __call__(self, text: str) -> str:
        for form in sorted(self._forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, "***")
        return text

    def clean(self, text: str) -> str:
        """Scrubbed and printable: what may be shown or stored of a message from outside."""
        return strip_control(self(text), keep_newlines=True)
