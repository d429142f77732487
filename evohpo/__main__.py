"""``python -m evohpo``: the command line (see ``evohpo.cli``)."""

import sys

from .results.cli import main

if __name__ == "__main__":
    sys.exit(main())
