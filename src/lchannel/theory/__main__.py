"""``python -m lchannel.theory vector-field|trajectory ...`` (same as ``lchannel theory ...``)."""

import sys

from .cli import main

sys.exit(main())
