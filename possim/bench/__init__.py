"""``possim bench``: measurements that need a quiet machine and a stopwatch, kept out of the test suite.

Each section is a module with ``run(quick: bool) -> dict``; the suite checks the shape of their JSON,
never their speed.
"""
