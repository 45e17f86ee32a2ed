"""Every message the VEN sends is checked against openleadr's OpenADR 2.0b XSD before it leaves.

openleadr validates what it receives but not what it renders from its templates. The VEN's
client creates each outgoing message through an ``OutgoingValidator`` (``ven.py``), which fails
closed: a message that does not validate is logged, counted and raised, never sent.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from openleadr.messaging import validate_xml_schema

__all__ = ["OutgoingMessageError", "OutgoingValidator"]

log = logging.getLogger(__name__)

MessageFactory = Callable[..., str]


class OutgoingMessageError(ValueError):
    """A message we created does not validate against the OpenADR 2.0b schema."""


class OutgoingValidator:
    """Wraps openleadr's message factory (``create_message`` with our keys bound).

    ``validated`` counts valid messages per type, ``invalid`` those refused.
    """

    def __init__(self, create: MessageFactory) -> None:
        self.create = create
        self.validated: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()

    def __call__(self, message_type: str, **payload: Any) -> str:
        message = self.create(message_type, **payload)
        try:
            validate_xml_schema(message)
        except Exception as exc:  # lxml's XMLSyntaxError (schema or parse error)
            self.invalid[message_type] += 1
            log.error("not sending %s: it fails the OpenADR 2.0b schema: %s", message_type, exc)
            raise OutgoingMessageError(
                f"{message_type} fails the OpenADR 2.0b schema: {exc}"
            ) from exc
        self.validated[message_type] += 1
        return message
