"""Ray job entrypoint: `ray job submit --working-dir . -- python jobs/translate.py --config F`."""

import sys

from ray_align.cli import main

if __name__ == "__main__":
    sys.exit(main(["translate", *sys.argv[1:]]))
