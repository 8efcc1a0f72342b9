import sys

from tailerd.cli import main

sys.exit(main())
