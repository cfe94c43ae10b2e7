"""``python -m ekspresi`` (and ``torchrun ... -m ekspresi train CONFIG``): the CLI."""

import sys

from ekspresi.cli import main

sys.exit(main())
