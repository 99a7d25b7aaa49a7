import sys

from pfstui.cli.main import main

sys.exit(main())
