"""The sandbox serves the site's screen-recording certificates in every mode, and its RCS opens
envelopes made for them (grmux's muxed-file envelopes included)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization

from grmux_core.config import load_settings
from grmux_core.encryption import SiteCertificate, make_envelope, new_key, output_encryption
from grmux_core.errors import CertificateError, KeyUnavailable
from grmux_core.services import Services
from grmux_sandbox.keys import make_certificate


@pytest.fixture()
def services(site, tmp_path):
    found = Services.from_settings(load_settings(site.write_config(tmp_path / "muxer.cfg")))
    yield found
    found.close()
    site.set_screen_encryption("none")


@pytest.mark.parametrize("mode", ["none", "empty"])
def test_a_site_without_certificates_does_not_encrypt(site, services, mode):
    site.set_screen_encryption(mode)
    assert services.rws.screen_recording_certificates() == []
    assert not services.output_encryption().encrypts


def test_two_certificates_are_served_and_rcs_opens_an_envelope_for_either(site, services):
    site.set_screen_encryption("two")
    chosen = services.output_encryption()
    assert chosen.encrypts and chosen.aliases == ("sandbox-rcs", "sandbox-rcs-2")
    for certificate in chosen.certificates:  # an envelope for one certificate alone: RCS has both keys
        key, iv = new_key()
        assert services.rcs.decrypt_key(make_envelope(key, iv, [certificate])) == (key, iv)
    key, iv = new_key()
    assert services.rcs.decrypt_key(make_envelope(key, iv, chosen.certificates)) == (key, iv)


def test_one_certificate_is_the_rcs_certificate(site, services):
    site.set_screen_encryption("one")
    [certificate] = services.output_encryption().certificates
    assert certificate.certificate() == site.keys.certificate


@pytest.mark.parametrize(("mode", "alias", "words"), [("broken", "sandbox-broken", "cannot be read"),
                                                      ("expired", "sandbox-expired", "expired on")])
def test_a_broken_or_expired_certificate_is_an_error_naming_it(site, services, mode, alias, words):
    site.set_screen_encryption(mode)
    with pytest.raises(CertificateError, match=f"'{alias}'.*{words}"):
        services.output_encryption()
    assert not output_encryption("never", services.rws.screen_recording_certificates()).encrypts


def test_an_envelope_for_a_certificate_rcs_does_not_hold_is_refused(site, services):
    stranger, _ = make_certificate("stranger")
    key, iv = new_key()
    envelope = make_envelope(key, iv, [SiteCertificate("x", stranger.public_bytes(serialization.Encoding.PEM).decode())])
    with pytest.raises(KeyUnavailable):
        services.rcs.decrypt_key(envelope)


def test_the_command_line_modes_are_the_key_store_modes():
    from grmux_sandbox.cli import SCREEN_ENCRYPTION
    from grmux_sandbox.keys import ENCRYPTION_MODES

    assert SCREEN_ENCRYPTION == ENCRYPTION_MODES
