"""The wallet tests reuse the register tests' world: a core on a loopback port, a terminal, a funded wallet."""

from tests.register.conftest import world  # noqa: F401
