"""Issue 14 item 12: with the Python guard bypassed (``guard=False``, as a program that rebuilds
``os`` from ``posix`` internals would), the kernel layers still hold: no Unix or abstract socket
reach outside, no surviving write outside the sandbox directory, a disk quota, and no pass
verdict forged by exiting 0 early."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import pytest

from trainer.eval.sandbox import isolation, run_python


def _needs(layer: str):
    iso = isolation()
    if not getattr(iso, layer):
        pytest.skip(f"this machine has no {layer} for sandboxed programs ({iso.describe()}): the "
                    f"fallback is reported by isolation()")


@pytest.fixture
def unix_listener(tmp_path):
    """A listening Unix socket outside the sandbox (a path and an abstract name), counting accepts."""
    path = Path("/tmp") / f"hrm-i14-{uuid.uuid4().hex[:8]}.sock"
    abstract = f"\0hrm-i14-{uuid.uuid4().hex[:8]}"
    servers = []
    accepted = []
    for address in (str(path), abstract):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(address)
        s.listen(4)
        s.settimeout(0.2)
        servers.append(s)
    os.chmod(path, 0o777)  # reachable by any uid: only the sandbox may stop the connect
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            for s in servers:
                try:
                    conn, _ = s.accept()
                    accepted.append(s.getsockname())
                    conn.close()
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, abstract, accepted
    stop.set()
    thread.join()
    for s in servers:
        s.close()
    path.unlink(missing_ok=True)


def test_unix_and_abstract_sockets_outside_are_unreachable(unix_listener):
    _needs("sockets_blocked")
    path, abstract, accepted = unix_listener
    probe = socket.socket(socket.AF_UNIX)  # the listener works for an ordinary process
    probe.connect(str(path))
    probe.close()
    for address in (str(path), abstract):
        code = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({address!r})\nprint('connected')"
        r = run_python(code, guard=False, timeout_s=20)
        assert r.status == "error" and "connected" not in r.stdout, r
        assert "Permission denied" in r.detail  # socket() itself refused by seccomp
    assert len(accepted) == 1  # only the probe above


def test_no_write_outside_survives_and_inside_vanishes():
    _needs("filesystem_confined")
    name = f"hrm-i14-{uuid.uuid4().hex[:8]}"
    targets = [f"/run/lock/{name}", f"/tmp/{name}", f"/var/tmp/{name}", f"/dev/shm/{name}"]
    code = ("import os\nwritten = []\n"
            f"for p in {targets!r}:\n"
            "    try:\n        open(p, 'w').write('x'); written.append(p)\n    except OSError as e:\n"
            "        print(p, e.strerror)\n"
            "open('inside.txt', 'w').write('ok')\nprint('inside', open('inside.txt').read())\n"
            "assert not written, written\n")
    r = run_python(code, guard=False, timeout_s=20)
    assert r.status == "passed", r
    assert r.stdout.count("Read-only file system") == len(targets) and "inside ok" in r.stdout
    assert not any(os.path.exists(t) for t in targets)
    assert not os.path.exists(r.workdir)


def test_disk_quota_stops_a_program_filling_the_disk():
    _needs("filesystem_confined")
    code = ("n = 0\ntry:\n    for i in range(100):\n        with open(f'f{i}', 'wb') as f:\n"
            "            f.write(b'0' * (8 << 20))\n        n += 1\nexcept OSError as e:\n"
            "    print('stopped', n, e.strerror)\n")
    r = run_python(code, guard=False, timeout_s=30, max_disk_mb=32)
    assert r.status == "passed", r
    assert "stopped" in r.stdout and "No space left on device" in r.stdout
    assert int(r.stdout.split()[1]) <= 4  # 32 MB: at most four 8 MB files


@pytest.mark.parametrize("exit_early", [
    "import posix\nposix._exit(0)",
    "import posix, signal\nposix.kill(posix.getpid(), 0)\nposix._exit(0)",
    "import sys\nsys.stdout.flush()\nimport posix\nposix._exit(0)",
])
def test_exiting_zero_before_a_failing_assert_is_not_a_pass(exit_early):
    r = run_python(f"{exit_early}\nassert False, 'the test that would fail'\n", guard=False, timeout_s=20)
    assert r.returncode == 0 and r.status == "exited" and not r.passed, r
    assert "proof" in r.detail
    ok = run_python("assert 1 + 1 == 2\n", guard=False, timeout_s=20)
    assert ok.passed


def test_isolation_reports_every_layer_here():
    iso = isolation()
    text = iso.describe()
    assert "filesystem_confined=" in text and "sockets_blocked=" in text
    if os.geteuid() == 0:  # this machine: root, so the mount namespace and seccomp are available
        assert iso.filesystem_confined and iso.sockets_blocked and iso.network_namespace
