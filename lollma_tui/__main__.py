import sys

from lollma_tui.cli import main

sys.exit(main())
