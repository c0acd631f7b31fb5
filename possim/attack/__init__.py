"""``possim attack``: replay the 7pay attack (a leaked ID/password list tried over many addresses, then the
stolen wallets topped up and spent at colluding stores) against a fresh core, with 7pay's defences and with
possim's, and count what it cost (``run.run_attack``)."""
