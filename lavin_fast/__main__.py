import sys

from lavin_fast.cli import main

sys.exit(main())
