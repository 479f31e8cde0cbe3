"""A data root on a real (local, moto) S3 server, end to end: build (synthetic sources, and a
JSONL input read from the bucket), mix, verify, a short training run on another "node" reading
through its cache; a flipped byte in a remote object refused in one line naming the key; an
interrupted upload leaving nothing registered; one download per node for concurrent readers."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from tests.storage.conftest import s3_client
from tests.trainer.conftest import DATA, TRAINER, env as trainer_env

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[2]


def run(*argv: str, cache: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m ...`` with this test's node cache (``HRM_CACHE``): one cache is one node."""
    e = trainer_env()
    e["HRM_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=e, timeout=timeout,
                          cwd=cache.parent)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@contextlib.contextmanager
def node(cache: Path):
    """This process as the node whose cache is ``cache``."""
    saved = os.environ.get("HRM_CACHE")
    os.environ["HRM_CACHE"] = str(cache)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HRM_CACHE")
        else:
            os.environ["HRM_CACHE"] = saved


@pytest.fixture(scope="module")
def remote(s3_server, tmp_path_factory):
    """The driver's work: the tiny trainer manifest mixed (tokenizer trained, two synthetic sources
    built, the plan computed) into ``s3://<bucket>/corpus``, plus a JSONL input read from the bucket."""
    base = tmp_path_factory.mktemp("s3root")
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    client = s3_client()
    client.create_bucket(Bucket=name)
    url = f"s3://{name}/corpus"
    manifest = base / "tiny.toml"
    manifest.write_text(DATA.format(seed=0) + TRAINER)
    driver = base / "driver-cache"
    records = [{"prompt": f"what is {i} plus {i}?", "answer": str(2 * i), "id": f"q{i}"} for i in range(60)]
    client.put_object(Bucket=name, Key="inputs/qa.jsonl", Body="".join(json.dumps(r) + "\n" for r in records).encode())
    root = driver / "roots" / name / "corpus"
    with node(driver):  # in process, as the other suites build (each command as its CLI runs it)
        from corpus.build import main as build
        from corpus.mix import main as mix

        assert mix([str(manifest), "--data-dir", url]) == 0
        assert build(["jsonl", "--from", f"s3://{name}/inputs/qa.jsonl", "--target-field", "answer", "--id-field",
                      "id", "--name", "qa", "--data-dir", url, "--quiet",
                      "--tokenizer", str(root / "tokenizers" / "tiny.json")]) == 0
    return {"bucket": name, "url": url, "base": base, "manifest": manifest, "driver": driver, "root": root}


def keys(bucket: str, prefix: str = "") -> list[str]:
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_remote_root_layout_and_registration(remote):
    from corpus.catalog import Catalog

    root = remote["root"]
    assert json.loads((root / ".remote.json").read_text())["url"] == remote["url"]
    rows = Catalog(root).query_dicts("SELECT version, manifest_key, files FROM remote_versions WHERE remote = ?",
                                     [remote["url"]], read_only=True)
    versions = {r["version"] for r in Catalog(root).query("SELECT id FROM versions", read_only=True)
                for r in [{"version": r[0]}]}
    plans = {r[0] for r in Catalog(root).query("SELECT id FROM mixes", read_only=True)}
    assert {r["version"] for r in rows} == versions | plans  # three versions and the plan, each registered
    listed = set(keys(remote["bucket"], "corpus/"))
    for r in rows:
        assert r["manifest_key"].split("/", 1)[1] in listed
        manifest = json.loads(s3_client().get_object(Bucket=remote["bucket"], Key=r["manifest_key"].split("/", 1)[1])
                              ["Body"].read())
        assert len(manifest["files"]) == r["files"]
        for entry in manifest["files"]:  # content-addressed: the key is the file's sha256
            assert f"corpus/objects/sha256/{entry['sha256'][:2]}/{entry['sha256']}" in listed
    assert "corpus/catalog.duckdb" in listed
    # the JSONL input was read from the bucket: the same bytes as a local file give the same id
    assert "qa" in {r[0] for r in Catalog(root).query("SELECT source FROM versions", read_only=True)}


@pytest.mark.shared_data
def test_wikitext_from_the_bucket_is_the_same_version_as_from_disk(remote, tmp_path, capsys):
    """Real data through fsspec: WikiText-2 (../shared/data) read from the bucket builds the very
    version (id and shard bytes) the same file on disk builds into a local root."""
    from corpus.build import main as build
    from corpus.catalog import Catalog
    from tests.conftest import shared

    src = shared("wikitext2", "valid.txt")
    s3_client().put_object(Bucket=remote["bucket"], Key="inputs/wt2/valid.txt", Body=src.read_bytes())
    tok = str(remote["root"] / "tokenizers" / "tiny.json")
    flags = ["--tokenizer", tok, "--quiet", "--near-dedup", "off"]
    local = tmp_path / "local"
    assert build(["wiki", "--from", str(src), "--data-dir", str(local), *flags]) == 0
    with node(remote["driver"]):
        assert build(["wiki", "--from", f"s3://{remote['bucket']}/inputs/wt2/", "--data-dir", remote["url"],
                      *flags]) == 0
    ids = {Catalog(r).query("SELECT id FROM versions WHERE source = 'wiki'", read_only=True)[0][0]
           for r in (local, remote["root"])}
    assert len(ids) == 1
    vid = ids.pop()
    rows = {r: Catalog(r).query_dicts("SELECT path, sha256 FROM files WHERE version = ? ORDER BY path", [vid],
                                      read_only=True) for r in (local, remote["root"])}
    assert rows[local] == rows[remote["root"]] and rows[local]
    registered = Catalog(remote["root"]).query("SELECT files FROM remote_versions WHERE version = ?", [vid],
                                               read_only=True)
    assert registered and registered[0][0] >= len(rows[local])


def test_verify_then_flipped_byte_is_refused_naming_the_key(remote, tmp_path, capsys):
    from corpus.verify import main as verify

    with node(remote["driver"]):
        assert verify(["--data-dir", remote["url"]]) == 0
    assert "objects in " + remote["url"] + " match the catalog" in capsys.readouterr().out
    from corpus.catalog import Catalog

    record = Catalog(remote["root"]).query_dicts(
        "SELECT path, sha256 FROM files WHERE path LIKE '%tokens.npy' ORDER BY path LIMIT 1", read_only=True)[0]
    key = f"corpus/objects/sha256/{record['sha256'][:2]}/{record['sha256']}"
    client = s3_client()
    body = bytearray(client.get_object(Bucket=remote["bucket"], Key=key)["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=remote["bucket"], Key=key, Body=bytes(body))
    try:
        with node(remote["driver"]):
            assert verify(["--data-dir", remote["url"]]) == 1
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and f"s3://{remote['bucket']}/{key}" in lines[0] and "sha256" in lines[0], lines
        assert record["path"] in lines[0]
        # a reader on a fresh node refuses it too, before using a byte of it
        from corpus.errors import UserError
        from corpus.storage.fetch import ObjectCache
        from corpus.storage.remote import RemoteRoot

        with pytest.raises(UserError, match=f"s3://{remote['bucket']}/{key}: sha256 .*corrupted") as err:
            ObjectCache(RemoteRoot.parse(remote["url"]), tmp_path / "objects").get(record["sha256"], None,
                                                                                     record["path"])
        assert "\n" not in str(err.value)
        assert not list((tmp_path / "objects").rglob(record["sha256"]))  # nothing kept
    finally:
        body[len(body) // 2] ^= 0x01
        client.put_object(Bucket=remote["bucket"], Key=key, Body=bytes(body))


@pytest.mark.slow
def test_training_on_another_node_reads_through_its_cache(remote):
    node = remote["base"] / "node2-cache"
    trained = ok(run("trainer.run", str(remote["manifest"]), "--data_dir", remote["url"], "--runs_dir",
                     str(remote["base"] / "runs"), "--steps", "3", "--checkpoint_every", "3", "--val_every", "3",
                     cache=node, timeout=300))
    from trainer.metrics import read_metrics

    steps = [r for r in read_metrics(remote["base"] / "runs" / "tiny" / "metrics.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in steps][-1] == 3 and all(r["loss"] == r["loss"] for r in steps), trained.stdout[-2000:]
    root = node / "roots" / remote["bucket"] / "corpus"
    assert (root / ".catalog-snapshot").exists()  # this node read the driver's catalog copy
    linked = [p for p in root.rglob("*.npy") if p.is_symlink()]
    assert linked, "no shard sidecar was fetched through the cache"
    for p in linked:  # each link points into the node's content-addressed cache, under its sha256
        target = Path(os.readlink(p))
        assert target.parent.parent == node / "objects" and target.name.startswith(target.parent.name)
    # what the driver registered is what this node read: the cached bytes hash to their names
    from corpus.atomic import sha256_file

    assert all(sha256_file(Path(os.readlink(p))) == Path(os.readlink(p)).name for p in linked)


def test_plan_reader_fetches_in_plan_order_then_reads_the_cache(remote, tmp_path, monkeypatch):
    """In process, a third node: opening the first shard fetches the next ones of the plan's order
    in the background; every batch equals the driver's; a second reader downloads nothing."""
    import numpy as np

    from corpus.catalog import Catalog
    from corpus.mixing import PlanReader, open_plan
    from corpus.paths import data_root
    from corpus.storage.fetch import DOWNLOADS

    monkeypatch.setenv("HRM_CACHE", str(tmp_path / "node3"))
    monkeypatch.setenv("HRM_PREFETCH_SHARDS", "1")
    root = data_root(remote["url"])
    assert root == tmp_path / "node3" / "roots" / remote["bucket"] / "corpus"
    plan_id = Catalog(root).query("SELECT id FROM mixes", read_only=True)[0][0]
    plan = open_plan(root, plan_id, verify="quick")
    assert not list((tmp_path / "node3" / "objects").rglob("*.npy"))  # nothing but plan and tokenizer yet
    start = DOWNLOADS["objects"]
    PlanReader(plan, "train").take(1)
    plan.fetch.wait()
    order = plan.fetch._order["train"]
    assert len(order) >= 2
    fetched = [p for p in order if p.is_symlink()]
    assert fetched == order[:2]  # the shard read, and one ahead in plan order (HRM_PREFETCH_SHARDS=1)
    assert DOWNLOADS["objects"] - start == 6  # parquet + two sidecars of each, once

    driver_plan = open_plan(remote["root"], plan_id, verify="none")
    for split in ("train", "val"):
        ours = list(PlanReader(plan, split).iter_batches(4, 192))
        theirs = list(PlanReader(driver_plan, split).iter_batches(4, 192))
        assert len(ours) == len(theirs) > 0
        assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(ours, theirs))
    plan.fetch.wait()
    after_first = DOWNLOADS["objects"]
    again = open_plan(root, plan_id, verify="none")  # a second reader on this node: the cache
    sum(int(b.lengths.sum()) for b in PlanReader(again, "train").iter_batches(4, 192))
    assert DOWNLOADS["objects"] == after_first


def _put_object(remote_url: str, data: bytes) -> str:
    import hashlib

    from corpus.storage.remote import RemoteRoot

    sha = hashlib.sha256(data).hexdigest()
    bucket, _, key = RemoteRoot.parse(remote_url).object_key(sha).partition("/")
    s3_client().put_object(Bucket=bucket, Key=key, Body=data)
    return sha


CONCURRENT_READER = """
import sys
from corpus.storage.fetch import DOWNLOADS, ObjectCache
from corpus.storage.remote import RemoteRoot
ObjectCache(RemoteRoot.parse(sys.argv[1]), sys.argv[2]).get(sys.argv[3], int(sys.argv[4]))
print(DOWNLOADS["objects"])
"""


def test_concurrent_readers_on_one_node_download_once(bucket, tmp_path):
    from corpus.storage.fetch import DOWNLOADS, ObjectCache
    from corpus.storage.remote import RemoteRoot

    url = f"s3://{bucket}/c"
    data = os.urandom(3 << 20)
    sha = _put_object(url, data)
    cache_dir = tmp_path / "objects"
    # processes (loader workers) and threads (the prefetcher) of one node, all at once
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_READER, url, str(cache_dir), sha, str(len(data))],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
             for _ in range(3)]
    before = DOWNLOADS["objects"]
    caches = [ObjectCache(RemoteRoot.parse(url), cache_dir) for _ in range(4)]
    paths = []
    threads = [threading.Thread(target=lambda c=c: paths.append(c.get(sha, len(data)))) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(counts) + DOWNLOADS["objects"] - before == 1  # one download on the node, all others waited
    assert len(set(paths)) == 1 and paths[0].read_bytes() == data
    # a second reader later: a cache hit, no request for the object's bytes
    again = ObjectCache(RemoteRoot.parse(url), cache_dir).get(sha, len(data))
    assert again == paths[0] and DOWNLOADS["objects"] - before + sum(counts) == 1


def test_interrupted_upload_leaves_nothing_registered(remote, tmp_path, monkeypatch, capsys):
    """A build whose upload fails (no bucket yet), then one interrupted mid-way (a file vanished
    after some objects went up): the version is in no manifest and not registered remotely;
    the next build completes it, registered exactly once."""
    from corpus.catalog import Catalog

    name = f"late-{uuid.uuid4().hex[:10]}"
    url = f"s3://{name}/p"
    cache = tmp_path / "cache"
    build = ("corpus.build", "synthetic:arith", "--count", "60", "--tiers", "0-1", "--data-dir", url, "--quiet",
             "--max-bad-ratio", "0.5")
    tok = remote["root"] / "tokenizers" / "tiny.json"
    from corpus.build import main

    monkeypatch.setenv("HRM_CACHE", str(cache))
    capsys.readouterr()
    assert main([*build[1:], "--tokenizer", str(tok)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and name in err[0] and "nothing was registered" in err[0], err
    root = cache / "roots" / name / "p"
    catalog = Catalog(root)
    vid = catalog.query("SELECT id FROM versions", read_only=True)[0][0]
    assert catalog.query("SELECT count(*) FROM remote_versions", read_only=True)[0][0] == 0
    s3_client().create_bucket(Bucket=name)
    last = catalog.query("SELECT path FROM files WHERE version = ? ORDER BY path DESC LIMIT 1", [vid],
                         read_only=True)[0][0]
    moved = (root / last).with_name("moved-away")
    os.replace(root / last, moved)  # the upload now fails part-way: other objects go up first
    from corpus.errors import UserError
    from corpus.storage import publish_remote

    with pytest.raises(UserError, match="nothing was registered"):
        publish_remote(root, catalog, vid)
    uploaded = keys(name, "p/")
    assert any(k.startswith("p/objects/") for k in uploaded)  # some objects went up ...
    assert not any(k.startswith("p/versions/") for k in uploaded)  # ... but no manifest
    assert catalog.query("SELECT count(*) FROM remote_versions", read_only=True)[0][0] == 0
    os.replace(moved, root / last)
    assert main([*build[1:], "--tokenizer", str(tok)]) == 0
    assert "already built" in capsys.readouterr().out
    assert catalog.query("SELECT version FROM remote_versions", read_only=True) == [(vid,)]
    assert f"p/versions/{vid}.json" in keys(name, "p/versions/")
