"""Ray job entrypoint: `ray job submit --working-dir . -- python jobs/search.py --config F`."""

import sys

from ray_align.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
