"""``grmux decrypt``: write the plaintext of a stored recording to a local file, through RCS.

    grmux decrypt CALL_ID -o call.mp4 [--media MEDIA_ID] [--config muxer.cfg]

Reads the call's screen recording from RWS, picks the media file (default: the newest muxed file),
downloads it from its storage and, when it is encrypted, asks RCS for its key with ``decrypt-key``
and decrypts it streaming into ``-o`` (a new file, mode 0600; an existing file is never
overwritten). For an operator checking an encrypted ``.mp4.bin`` recording by hand.
"""

from __future__ import annotations

import argparse
import os
import sys

from grmux_cli.exit_codes import ExitCode


def pick_media(screen, media_id: str | None):
    """The media file to decrypt: ``media_id``, else the newest muxed file (highest ``_muxed_<n>``)."""
    from grmux_core.models import muxed_number

    if media_id:
        return next((m for m in screen.media_files if m.media_id == media_id), None)
    return max(screen.muxed_files, key=lambda m: muxed_number(m.media_id) or 0, default=None)


def _decrypt(args: argparse.Namespace) -> ExitCode:
    from grmux_cli.config_cmd import print_config_error
    from grmux_core.config import load_settings
    from grmux_core.crypto import decrypt_stored
    from grmux_core.errors import ConfigError, GrmuxError, TransientError
    from grmux_core.services import Services

    if os.path.exists(args.output):
        print(f"grmux decrypt: {args.output} exists; choose another output path", file=sys.stderr)
        return ExitCode.USAGE
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    services = Services.from_settings(settings)
    try:
        screen = services.rws.screen_recording(args.call_id)
        media = pick_media(screen, args.media) if screen else None
        if media is None:
            what = f"media {args.media}" if args.media else "a muxed file"
            print(f"grmux decrypt: call {args.call_id} has no {what} in RWS", file=sys.stderr)
            return ExitCode.CALLS_FAILED
        decrypt_stored(media, args.output, storage=services.storage, rcs=services.rcs,
                       temp_dir=settings.processing.temp_dir)
    except TransientError as exc:
        print(f"grmux decrypt: {exc}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    except GrmuxError as exc:
        print(f"grmux decrypt: {exc}", file=sys.stderr)
        return ExitCode.CALLS_FAILED
    finally:
        services.close()
    state = "decrypted through RCS" if media.encrypted else "not encrypted, copied"
    print(f"wrote {args.output}: {media.media_id} of call {args.call_id} ({state})")
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``decrypt`` to the grmux command line."""
    p = subparsers.add_parser("decrypt", help="write the plaintext of a stored (encrypted) recording to a local "
                                              "file, through RCS")
    p.add_argument("call_id", help="the call recording id")
    p.add_argument("--media", default=None, metavar="MEDIA_ID",
                   help="the media id to decrypt (default: the call's newest muxed file)")
    p.add_argument("-o", "--output", required=True, help="new local file for the plaintext (mode 0600)")
    p.add_argument("--config", default="muxer.cfg", help="muxer.cfg with the RWS, RCS and storage accounts")
    p.set_defaults(func=_decrypt)
