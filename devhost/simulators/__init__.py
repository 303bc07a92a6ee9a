"""Simulators of the external systems, speaking their real protocols over HTTP on loopback."""
