"""A small sample chain that exercises the platform until the first automation lands. Never deployed.

Intake of a `;`-separated file of payees (with CPR numbers, so that redaction is tested for real), then
three steps: validate (business rules), enrich (an HTTP look-up that can fail technically), book (an HTTP
side effect keyed by the item, so a repeat is harmless).
"""
