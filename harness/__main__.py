"""python -m harness {check,zoo,bench,compare,report,...} --help"""

import sys

from harness.cli import main

sys.exit(main())
