"""Pieces of bench/bench_agent.py: OVSDB client, OVN topology at scale, node side, probes, tables."""
