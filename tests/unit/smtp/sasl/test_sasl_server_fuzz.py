"""Any bytes fed to any server mechanism give a Step, never an exception (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailseal.smtp.sasl.credentials import ScramCredentials
from mailseal.smtp.sasl.mechanisms import (
    SERVER_MECHANISMS,
    Challenge,
    Failure,
    NeedCredentials,
    ServerMechanism,
    Step,
    Success,
    VerifyPassword,
    server_mechanism,
)

CREDS = ScramCredentials.derive("pw", b"salt", 1)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SNONCE = "snonce"

# Near-valid pieces, so the fuzzer gets past the first parser often.
FIRST = st.one_of(
    st.binary(max_size=64),
    st.builds(
        lambda gs2, user, nonce, tail: f"{gs2}n={user},r={nonce}{tail}".encode(),
        st.sampled_from(["n,,", "y,,", "n,a=u,", "p=x,,", ",,", "n,a=,"]),
        st.text(max_size=8),
        st.text(max_size=8),
        st.sampled_from(["", ",x=1", ",m=1", ","]),
    ),
)


def _final(cnonce_and_proof: tuple[str, str]) -> bytes:
    cnonce, proof = cnonce_and_proof
    return f"c=biws,r={cnonce}{SNONCE},p={proof}".encode()


LATER = st.one_of(
    st.binary(max_size=64),
    st.builds(_final, st.tuples(st.text(max_size=6), st.text(max_size=48))),
    st.just(b""),
)


def _step(server: ServerMechanism, data: bytes, known: bool) -> Step:
    step = server.respond(data)
    if isinstance(step, NeedCredentials):
        step = server.credentials(CREDS if known else None)
    return step


@FUZZ
@given(
    name=st.sampled_from(SERVER_MECHANISMS),
    initial=st.one_of(st.none(), FIRST),
    answers=st.lists(st.one_of(FIRST, LATER), max_size=4),
    known=st.booleans(),
)
def test_server_mechanisms_never_raise(
    name: str, initial: bytes | None, answers: list[bytes], known: bool
) -> None:
    server = server_mechanism(name, SNONCE)
    assert server is not None
    step = server.start(initial)
    if isinstance(step, NeedCredentials):
        step = server.credentials(CREDS if known else None)
    for data in answers:
        assert isinstance(step, Challenge | VerifyPassword | Success | Failure)
        if not isinstance(step, Challenge):
            break
        step = _step(server, data, known)
    assert isinstance(step, Challenge | VerifyPassword | Success | Failure)
    if isinstance(step, Failure):
        assert step.reason
        assert "pw" not in step.reason
