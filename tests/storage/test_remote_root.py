"""``s3://bucket/prefix`` parsing and the key layout (docs/storage.md), no server needed."""

from __future__ import annotations

import pytest

from corpus.errors import UserError
from corpus.storage.remote import RemoteRoot, is_remote


def test_parse_and_key_layout():
    r = RemoteRoot.parse("s3://my-bucket/team/corpus/")
    assert (r.bucket, r.prefix, r.url) == ("my-bucket", "team/corpus", "s3://my-bucket/team/corpus")
    sha = "ab" + "0" * 62
    assert r.object_key(sha) == f"my-bucket/team/corpus/objects/sha256/ab/{sha}"
    assert r.manifest_key("v123") == "my-bucket/team/corpus/versions/v123.json"
    assert r.catalog_key() == "my-bucket/team/corpus/catalog.duckdb"
    assert RemoteRoot.parse("s3://bucket").key("x") == "bucket/x"
    assert is_remote("s3://b/x") and not is_remote("data") and not is_remote(None)


@pytest.mark.parametrize("bad", ["s3://", "s3://UPPER/x", "s3://a/x", "s3://bucket/a//b", "s3://bucket/a/../b",
                                 "gs://bucket/x"])
def test_bad_roots_are_one_line_errors(bad):
    with pytest.raises(UserError) as err:
        RemoteRoot.parse(bad)
    assert "\n" not in str(err.value) and bad.split("/")[0] in str(err.value)


def test_working_root_lives_in_the_cache(tmp_path, monkeypatch):
    from corpus.storage.roots import remote_of, working_root

    monkeypatch.setenv("HRM_CACHE", str(tmp_path))
    r = RemoteRoot.parse("s3://bucket/p/q")
    assert working_root(r) == tmp_path / "roots" / "bucket" / "p/q"
    assert remote_of(tmp_path) is None  # a plain local root
