"""Automation 2: paying out claims, from a dropped file to balanced posting files, offsetting and receipts."""

from functions.claim_payouts.functions import bp

BLUEPRINTS = (bp,)
