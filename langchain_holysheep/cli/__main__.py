"""``python -m langchain_holysheep.cli``: the same as the ``holysheep`` command."""

import sys

from langchain_holysheep.cli import main

__all__: list[str] = []

sys.exit(main())
