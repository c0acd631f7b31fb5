"""``possim chaos``: seeded faults and crashes between registers and a served core, then proof that no payment
was lost or taken twice (after TigerBeetle's VOPR: every failure replays from its seed).

- ``faults``: the kinds of fault, their rates and the seeded plan that says which request gets which;
- ``wire`` and ``proxy``: an HTTP/1.1 proxy on loopback, one port a register, that applies the plan between a
  real :class:`terminal.client.PaymentClient` and a real ``possim core serve`` subprocess;
- ``shop``: the database, the registers and the funded phones the run starts from;
- ``served``: the core subprocess (one process, or a supervisor and its workers), killed with SIGKILL and
  started again on the same database;
- ``crashes``: when to kill it, chosen from the seed, and the thread that does it under load;
- ``registers``: the registers' selling loops (retry with the same order id, query, reverse);
- ``checks``: after the run, the core's database read directly against what every register recorded;
- ``run``: one whole run and its figures; ``report``: the table and the replay line.
"""
