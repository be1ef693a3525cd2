"""Any text in main.cf, master.cf or a value gives a result or a ConfigError, nothing else."""

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.config.errors import ConfigError
from mailseal.config.expand import ExpansionError, expand
from mailseal.config.facts import SystemFacts
from mailseal.config.maincf import parse_main_cf
from mailseal.config.mastercf import parse_master_cf
from mailseal.config.model import Config

FACTS = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")
# Text built from the characters that matter to these parsers, plus anything else.
SYNTAX = st.text(alphabet=st.sampled_from("ab_=$:{}()?!<>= \t\n#-o,.0123456789") | st.characters())


@settings(max_examples=300, deadline=None)
@given(SYNTAX)
def test_main_cf_never_raises_anything_but_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        Config(parse_main_cf(text, "main.cf").settings(), FACTS)


@settings(max_examples=300, deadline=None)
@given(SYNTAX)
def test_master_cf_never_raises_anything_but_config_error(text: str) -> None:
    with contextlib.suppress(ConfigError):
        parse_master_cf(text, "master.cf")


@settings(max_examples=300, deadline=None)
@given(SYNTAX)
def test_expansion_never_raises_anything_but_expansion_error(text: str) -> None:
    values = {"a": text, "b": "$a", "empty": ""}
    with contextlib.suppress(ExpansionError):
        expand(text, values.get)
