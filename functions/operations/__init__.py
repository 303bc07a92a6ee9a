"""Operations: the platform's own functions (closing runs; later the sweeper)."""

from functions.operations.run_closer import bp

__all__ = ["bp"]
