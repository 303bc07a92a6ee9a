"""Operations: the platform's own functions (closing runs, handing items to people; later the sweeper)."""

from functions.operations.handoff import bp as handoff_bp
from functions.operations.run_closer import bp as run_closer_bp
from functions.operations.sweeper import bp as sweeper_bp

BLUEPRINTS = (run_closer_bp, handoff_bp, sweeper_bp)
