"""What storing the muxed file encrypted costs, beside the mux itself. Prints, never asserts.

1. A 5-minute call (the media of ``benchmarks/mux_speed.py``: 8 kHz MP3 + 1280x720 25 fps H.264
   screen, generated once and cached in ``$TMPDIR/grmux-mux-bench``) is muxed in-process with
   ``mux_files`` (probe + plan + run + verify), then the output is encrypted with
   ``encrypt_file`` (fresh key, AES-256-CBC + PKCS#7, streaming, SHA-256 of the plain bytes on the
   way) and its envelope made for two certificates; both are timed (median of ``--repeat``), with
   MiB/s for the encryption.
2. The two verification choices of the issue, on that encrypted file (the download from storage
   comes on top of both and is the same size): decrypting the **whole** file streaming and comparing
   its SHA-256 with the plain file's, against decrypting only the **first and last blocks**.
3. Peak memory encrypting a ``--big-mb`` (default 500) MB file: in a child process, the peak RSS
   (``ru_maxrss``) after importing grmux and after encrypting, so the difference is what the
   encryption itself held.

    .venv/bin/python benchmarks/encrypt_output.py [--repeat 5] [--big-mb 500] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mux_speed import CALL_START, SCREEN_START, call_media
from deployments.processes import run_process

MIB = 1024 * 1024

# The child of step 3: peak RSS after imports, then after encrypting argv[1] into argv[2].
CHILD = """\
import resource, sys
from grmux_core.encryption import encrypt_file, new_key
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
key, iv = new_key()
encrypt_file(sys.argv[1], sys.argv[2], key, iv)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after)
"""


def first_and_last_blocks(path: Path, key: bytes, iv: bytes) -> tuple[bytes, bytes]:
    """Plain first block and last (unpadded) block: CBC needs only the block before each."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
        f.seek(size - 32)
        prev, last = f.read(16), f.read(16)
    first = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(head)
    tail = Cipher(algorithms.AES(key), modes.CBC(prev)).decryptor().update(last)
    return first, tail[:-tail[-1]]


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    from datetime import datetime

    from cryptography.hazmat.primitives.serialization import Encoding

    from grmux_core.encryption import (
        SiteCertificate,
        encrypt_file,
        make_envelope,
        new_key,
        sha256_of_decrypted,
    )
    from grmux_core.mux import mux_files
    from grmux_sandbox.keys import make_certificate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--big-mb", type=int, default=500)
    ap.add_argument("--keep", help="directory of the generated media (default: $TMPDIR/grmux-mux-bench)")
    args = ap.parse_args()
    audio, screen, _media_dir = call_media(args.minutes, args.keep)

    certificates = [SiteCertificate(f"c{i}", make_certificate(f"bench {i}")[0].public_bytes(Encoding.PEM).decode())
                    for i in range(2)]
    with tempfile.TemporaryDirectory(prefix="grmux-enc-bench-") as tmp:
        d = Path(tmp)
        (d / "scratch").mkdir()
        n = iter(range(10 ** 6))

        def mux() -> None:
            mux_files([(str(audio), datetime.fromisoformat(CALL_START))],
                      [(str(screen), datetime.fromisoformat(SCREEN_START))], d / f"muxed{next(n)}.mp4",
                      workdir=d / "scratch")

        mux_s = median_time(mux, args.repeat)
        muxed = d / "muxed0.mp4"
        size = muxed.stat().st_size
        key, iv = new_key()
        m = iter(range(10 ** 6))
        sealed_paths: list[Path] = []

        def encrypt() -> None:
            path = d / f"muxed.{next(m)}.bin"
            make_envelope(key, iv, certificates)
            sealed_paths.append(encrypt_file(muxed, path, key, iv).path)

        enc_s = median_time(encrypt, args.repeat)
        sealed = sealed_paths[0]
        whole_s = median_time(lambda: sha256_of_decrypted(sealed, key, iv), args.repeat)
        ends_s = median_time(lambda: first_and_last_blocks(sealed, key, iv), args.repeat)
        print(f"5-minute 720p call, muxed file {size / MIB:.1f} MiB (median of {args.repeat}):")
        print(f"  mux (probe + plan + run + verify)   {mux_s:7.3f} s")
        print(f"  encrypt + envelope (2 recipients)   {enc_s:7.3f} s   {size / MIB / enc_s:7.0f} MiB/s   "
              f"= {enc_s / mux_s:.1%} of the mux")
        print(f"  verify: whole file, streaming hash  {whole_s:7.3f} s   {size / MIB / whole_s:7.0f} MiB/s")
        print(f"  verify: first + last blocks only    {ends_s * 1000:7.3f} ms")

        big = d / "big.mp4"
        with open(big, "wb") as f:
            block = os.urandom(MIB)
            f.writelines(block for _ in range(args.big_mb))
        t = time.perf_counter()
        run = run_process([sys.executable, "-c", CHILD, str(big), str(d / "big.mp4.bin")], timeout=900,
                          capture_output=True, text=True, cwd=ROOT)
        big_s = time.perf_counter() - t
        if run.returncode:
            raise SystemExit(run.stderr)
        before, after = (int(v) for v in run.stdout.split())
        print(f"{args.big_mb} MB file: child encrypted it in {big_s:.1f} s (process incl. start-up); peak RSS "
              f"{before / 1024:.0f} MiB after imports, {after / 1024:.0f} MiB after encrypting "
              f"(+{(after - before) / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
