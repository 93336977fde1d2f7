"""Records read as an integrator reads them with the CloudEvents Python SDK (PyPI
``cloudevents``, its Kafka binding, structured mode)."""

from __future__ import annotations

import json
from typing import Any

from cloudevents.core.bindings.kafka import KafkaMessage, from_structured_event

from shared.kernel.envelope import CONTENT_TYPE


def read(value: bytes) -> Any:
    """The SDK's event of one record value (raises where the SDK refuses it)."""
    message = KafkaMessage(headers={"content-type": CONTENT_TYPE.encode()}, key=None, value=value)
    return from_structured_event(message)


def without_nulls(value: bytes) -> bytes:
    """A first-form record as docs/integrating.md tells a reader to hand it to an SDK that
    refuses null attributes: its top-level nulls removed."""
    event = {name: v for name, v in json.loads(value).items() if v is not None}
    return json.dumps(event).encode()
