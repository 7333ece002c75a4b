#!/usr/bin/env python3
"""Fill, copy into, or check the course's data root: the same as the ``tlcourse-fetch`` command.

The fetch tool lives in the package (``tlcourse/infra/fetch.py``), so that a pip-installed course has it
too; this file keeps the command the lessons and error messages name working from a checkout,
installed or not. ``python data_scripts/fetch_data.py --help`` lists the options.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, installed or not

from tlcourse.infra.fetch import main

if __name__ == "__main__":
    sys.exit(main())
