"""The automations, one package each, plus the platform's own operations functions."""
