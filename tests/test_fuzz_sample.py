"""A small seeded sample of each fuzz campaign (`python -m fuzz` runs them at full size).

Every property is asserted to be zero: uncaught exceptions, wrong grants, junk applied to the
cache, events marked uploaded without an acknowledgement, lost or duplicated events."""

from __future__ import annotations

import pytest

from fuzz import files, kill, payloads, replies
from fuzz.common import Result

# Eleven seconds of seeded campaigns: they run with the slow tests, which CI and the README's
# test command run after the default suite.
pytestmark = pytest.mark.slow

SEED = 1


def zero(result: Result, *names: str) -> None:
    found = {n: result.failures[n] for n in names if result.failures[n]}
    assert not found, f"{found}; first examples: {result.examples}"


def test_fuzz_payloads_never_grant_anything_but_an_enrolled_valid_code() -> None:
    result = payloads.run(n=3000, images=40, seed=SEED)
    assert result.cases == 3040 and result.info["of which granted"] > 0
    zero(result, "uncaught exceptions", "wrong grants")


@pytest.fixture(scope="module")
def verify_sample() -> Result:
    return replies.run_verify(200, SEED)


def test_fuzz_verify_replies_never_escape_the_chain(verify_sample: Result) -> None:
    zero(verify_sample, "uncaught exceptions")


def test_fuzz_verify_replies_never_grant_what_the_offline_policy_would_not(
        verify_sample: Result) -> None:
    zero(verify_sample, "wrong grants")


@pytest.fixture(scope="module")
def credentials_sample() -> Result:
    return replies.run_credentials(150, SEED)


def test_fuzz_credentials_replies_never_escape_sync(credentials_sample: Result) -> None:
    zero(credentials_sample, "uncaught exceptions")


def test_fuzz_credentials_replies_never_change_the_cache(credentials_sample: Result) -> None:
    zero(credentials_sample, "cache changed by junk")


@pytest.fixture(scope="module")
def events_sample() -> Result:
    return replies.run_events(150, SEED)


def test_fuzz_events_replies_never_escape_the_uploader(events_sample: Result) -> None:
    assert events_sample.cases == 150
    zero(events_sample, "uncaught exceptions")


def test_fuzz_events_replies_never_mark_unacknowledged_events(events_sample: Result) -> None:
    zero(events_sample, "lost events")


@pytest.fixture(scope="module")
def allowlist_sample() -> Result:
    return files.run_allowlists(300, SEED)


def test_fuzz_allowlists_never_crash_and_keep_the_previous_list(
        allowlist_sample: Result) -> None:
    assert allowlist_sample.info["lists refused whole (AllowlistError)"] > 0
    zero(allowlist_sample, "uncaught exceptions", "previous list lost on a failed load")


def test_fuzz_allowlists_never_grant_a_code_no_valid_row_lists(
        allowlist_sample: Result) -> None:
    zero(allowlist_sample, "wrong grants")


@pytest.fixture(scope="module")
def config_sample() -> Result:
    return files.run_configs(300, subprocesses=2, seed=SEED)


def test_fuzz_configs_never_accept_junk_values(config_sample: Result) -> None:
    assert config_sample.info["configs refused (ConfigError)"] > 0
    zero(config_sample, "junk accepted")


def test_fuzz_configs_only_ever_raise_config_error(config_sample: Result) -> None:
    zero(config_sample, "uncaught exceptions", "check-config crashed")


@pytest.mark.slow
def test_fuzz_kill_9_during_upload_and_sync_loses_and_mixes_nothing() -> None:
    result = kill.run(["upload", "sync"], trials=1, seed=SEED, rows=200)
    assert result.info["events committed locally"] > 0
    zero(result, "lost events", "duplicated events", "cache mixed or damaged after kill",
         "cache not current after restart", "outbox not drained after restart")
