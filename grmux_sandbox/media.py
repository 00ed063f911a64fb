"""The synthetic media of the sandbox: re-exported from :mod:`grmux_core.synthetic`.

The generator and detectors moved to core because the sync canary (production code) makes and
decodes the same media; tests, the demo and the benchmarks keep importing them from here.
"""

from grmux_core.synthetic import (  # noqa: F401 - re-exports
    BACKGROUND,
    BEEP_SECONDS,
    decode_errors,
    detect_beeps,
    detect_black,
    detect_flashes,
    make_audio,
    make_screen,
    marker_times,
)
