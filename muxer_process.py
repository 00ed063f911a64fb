"""The legacy command line of the Recording Muxer: ``python muxer_process.py --config-file=muxer.cfg``.

Kept for operators' scripts; the polling loop and its options are :mod:`grmux_cli.legacy`
(``python muxer_process.py --help`` lists them and the exit codes).
"""

import sys

from grmux_cli.legacy import main

if __name__ == "__main__":
    sys.exit(main())
