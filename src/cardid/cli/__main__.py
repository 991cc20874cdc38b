import sys

from cardid.cli import main

sys.exit(main())
