"""`python -m src` is the same as the `oas` command."""

from src.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
