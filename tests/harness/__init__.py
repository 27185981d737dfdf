"""Real-component test harness (daemons in temp dirs, network namespaces)."""
