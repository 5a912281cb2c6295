import sys

from fercam.apps.cli import main

sys.exit(main())
