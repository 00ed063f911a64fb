"""``python -m grmux_cli ...`` is ``grmux ...``."""

import sys

from grmux_cli.main import main

sys.exit(main())
