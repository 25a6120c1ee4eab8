"""Per-instance runtime state (lives in ``app.state.sim``; nothing here is module-level)."""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Any

from simulator.behaviour import Behaviour
from simulator.wire import new_id

REQUEST_LOG_SIZE = 200
IMAGE_STORE_SIZE = 256


class SimState:
    """Behaviour defaults, the request log, generated images and the error-rate counter."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.images: OrderedDict[str, bytes] = OrderedDict()
        self._calls = 0

    def record(self, entry: dict[str, Any]) -> None:
        self.requests.append(entry)

    def should_fail(self) -> bool:
        """Deterministic error rate: call k fails when floor((k+1)*rate) > floor(k*rate).

        Exactly ``rate`` of the calls fail, spread evenly, with no randomness.
        """
        k = self._calls
        self._calls += 1
        rate = self.behaviour.error_rate
        return math.floor((k + 1) * rate) > math.floor(k * rate)

    def store_image(self, png: bytes) -> str:
        image_id = new_id("img_")
        self.images[image_id] = png
        while len(self.images) > IMAGE_STORE_SIZE:
            self.images.popitem(last=False)
        return image_id
