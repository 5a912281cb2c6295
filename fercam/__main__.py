import sys

from fercam.cli import main

sys.exit(main())
