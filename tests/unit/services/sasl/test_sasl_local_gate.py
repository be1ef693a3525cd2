"""The built-in backend's verify gate: one check per client address, a bounded total."""

import asyncio
import threading
import time

from mailseal.services.sasl.backend import Rejected, SaslResult
from mailseal.services.sasl.local import _Gate


def test_one_check_per_address_and_others_still_served() -> None:
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    lock = threading.Lock()

    def work(client: str) -> SaslResult:
        with lock:
            active[client] = active.get(client, 0) + 1
            peak[client] = max(peak.get(client, 0), active[client])
        time.sleep(0.05)
        with lock:
            active[client] -= 1
        return Rejected("authentication failure", None)

    async def scenario() -> float:
        gate = _Gate(asyncio.Semaphore(2))
        flood = [gate.run("192.0.2.66", lambda: work("192.0.2.66")) for _ in range(8)]
        tasks = [asyncio.ensure_future(job) for job in flood]
        await asyncio.sleep(0.01)
        started = time.monotonic()
        await gate.run("192.0.2.1", lambda: work("192.0.2.1"))
        waited = time.monotonic() - started
        await asyncio.gather(*tasks)
        assert gate.per_client == {} and gate.holders == {}
        return waited

    waited = asyncio.run(scenario())
    assert peak["192.0.2.66"] == 1  # the flood never holds both slots
    assert waited < 0.3  # the other address is served at once, not after 8 checks
