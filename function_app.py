"""The Functions app: wiring only. Each automation's package exposes a Blueprint; this registers them."""

import azure.functions as func

from functions import claim_payouts, operations, vendor_onboarding
from shared import telemetry
from shared.logs import install as install_logging

# Before any function logs: every record gets run/item context and loses anything CPR-shaped, and goes to
# Application Insights when a connection string is configured.
install_logging()
telemetry.configure()

#: Every blueprint of the deployed app; devhost's sample app registers these too.
BLUEPRINTS: tuple[func.Blueprint, ...] = (
    *operations.BLUEPRINTS,
    *vendor_onboarding.BLUEPRINTS,
    *claim_payouts.BLUEPRINTS,
)

app = func.FunctionApp()
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
