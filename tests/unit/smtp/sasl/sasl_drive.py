"""Drive a client SASL mechanism against a server one in memory (test helper)."""

from __future__ import annotations

from collections.abc import Callable

from mailseal.smtp.sasl.client import ClientMechanism
from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.mechanisms import Challenge, NeedCredentials, ServerMechanism, Step

Lookup = Callable[[str], ScramCredentials | None]


def no_user(_username: str) -> ScramCredentials | None:
    return None


def drive(
    server: ServerMechanism,
    client: ClientMechanism,
    lookup: Lookup = no_user,
    *,
    use_initial: bool = True,
) -> tuple[Step, list[Step]]:
    """Run the exchange to its final step; return it and every step on the way."""
    steps: list[Step] = []
    step = server.start(client.initial() if use_initial else None)
    for _ in range(10):  # no mechanism of ours needs more than four round trips
        steps.append(step)
        match step:
            case Challenge(data):
                step = server.respond(client.respond(data))
            case NeedCredentials(username):
                step = server.credentials(lookup(username))
            case _:
                return step, steps
    raise AssertionError(f"exchange did not end: {steps}")
