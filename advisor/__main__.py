"""`python -m advisor ...`: the `advisor` command, for environments without its script."""

from advisor._console import main

if __name__ == "__main__":
    main()
