import sys

from mtlpareto.cli import main

sys.exit(main())
