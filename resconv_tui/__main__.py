import sys

from resconv_tui.cli import main

sys.exit(main())
