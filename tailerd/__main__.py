import sys

from tailerd.edges.signals import catch_early

catch_early()  # before the heavy imports: a SIGTERM during start-up is a clean stop

from tailerd.cli import main  # noqa: E402

sys.exit(main())
