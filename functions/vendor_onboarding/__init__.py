"""Automation 1: new supplier in Kvantum, from a ServiceNow request to a created vendor and a receipt."""

from functions.vendor_onboarding.functions import bp

BLUEPRINTS = (bp,)
