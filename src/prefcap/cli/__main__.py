"""`python -m prefcap.cli` (and `accelerate launch -m prefcap.cli`, `torchrun -m prefcap.cli`)."""

import sys

from prefcap.cli import main

if __name__ == "__main__":
    sys.exit(main())
