"""Operations: the platform's own functions (closer, hand-off, mail, sweeper, pick-up, retention)."""

from functions.operations.handoff import bp as handoff_bp
from functions.operations.inbox_pickup import bp as inbox_pickup_bp
from functions.operations.ledger_retention import bp as ledger_retention_bp
from functions.operations.mailer import bp as mailer_bp
from functions.operations.run_closer import bp as run_closer_bp
from functions.operations.sweeper import bp as sweeper_bp

BLUEPRINTS = (run_closer_bp, handoff_bp, mailer_bp, sweeper_bp, inbox_pickup_bp, ledger_retention_bp)
