"""Tasks of the metadata stage: list the cycle's calls, read their screen recordings, check them."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from grmux_core.backfill import Slice, narrow
from grmux_core.cycle import CycleScope
from grmux_core.encryption import OutputEncryption
from grmux_core.listing import Listing, list_calls
from grmux_core.models import RecordError, ScreenRecording
from grmux_core.quality import QualityReport, metadata_rows, validate_metadata
from tasks.context import RunConfig, services_for
from tasks.retry import RETRY_OPTIONS


@task(name="list-calls", tags=["rws"], cache_policy=NO_CACHE, **RETRY_OPTIONS)
def list_calls_task(run: RunConfig, scope: CycleScope) -> Listing:
    """List the window (per sub-interval when split) or the backfill query, keep this shard."""
    rws = services_for(run).rws
    listing = list_calls(rws, window=scope.window, pieces=scope.pieces, query=scope.query, shard=scope.shard)
    return narrow(listing, scope.piece) if scope.piece else listing


@task(name="count-calls", tags=["rws"], cache_policy=NO_CACHE, **RETRY_OPTIONS)
def count_calls_task(run: RunConfig, piece: Slice) -> int:
    """How many calls ``piece`` lists (its pages of records, nothing else read): the cheap first
    count a backfill sizes its slices from."""
    services = services_for(run)
    query = piece.query(services.settings.htcc.list_time_format)
    listing = narrow(list_calls(services.rws, window=None, query=query), piece)
    return len(listing.calls) + len(listing.bad_records)


@task(name="read-screen-recordings", tags=["rws"], cache_policy=NO_CACHE, **RETRY_OPTIONS)
def read_screens_task(run: RunConfig, call_ids: list[str]) -> dict[str, ScreenRecording | RecordError]:
    """Screen-recording metadata of the calls, in bulk slices (or one request per call)."""
    return services_for(run).rws.screen_recordings(call_ids)


@task(name="check-metadata-quality", cache_policy=NO_CACHE)
def validate_task(listing: Listing, screens: dict[str, ScreenRecording | RecordError],
                  scope: CycleScope) -> QualityReport:
    """great-expectations over the window's metadata; failing calls are reported, not processed."""
    good_screens = {k: v for k, v in screens.items() if isinstance(v, ScreenRecording)}
    return validate_metadata(metadata_rows(listing.calls, good_screens), scope.window)


@task(name="read-encryption-certificates", tags=["rws"], cache_policy=NO_CACHE, **RETRY_OPTIONS)
def read_encryption_task(run: RunConfig) -> OutputEncryption:
    """The site's screen-recording certificates, read and validated once per cycle; an unusable
    certificate fails the cycle (no call is muxed into plain text instead)."""
    return services_for(run).output_encryption()
