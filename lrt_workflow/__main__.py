import sys

from lrt_workflow.cli import main

sys.exit(main())
